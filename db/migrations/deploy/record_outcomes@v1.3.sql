-- Deploy alerts_v2:record_outcomes@v1.3 (the version tagged v1.3; reworked since, so its included
-- files are inlined as they were then; revert/record_outcomes.sql restores them)
-- The unfenced signatures are dropped, so no path can record without a claim token.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_sent(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_failed(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_skipped(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS requeue_deliveries(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS release_deliveries(bigint[]);
-- db/functions/claim_token_check.sql as it was at @v1.3 (frozen copy).
-- Recording what a sender did with the deliveries it claimed. Every function is fenced:
-- it changes a row only while the row still carries the claim_token of the caller's claim
-- (re-checked by the UPDATE itself), so a sender whose lease expired, and whose rows were
-- reclaimed and claimed again by another sender, can never overwrite the newer claim.
-- Each returns the number of rows it changed; the caller counts the rest as stale.
-- ids[i] goes with claim_tokens[i] and with the i-th detail.

-- The one check every outcome function makes of its arguments.
CREATE OR REPLACE FUNCTION alerts_check_claim_tokens(caller text, ids bigint[], claim_tokens bigint[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF claim_tokens IS NULL OR cardinality(claim_tokens) <> cardinality(ids) THEN
        RAISE EXCEPTION '%: pass one claim_token per id (the claim_token column the claim returned), got % ids and % tokens',
            caller, cardinality(ids), coalesce(cardinality(claim_tokens)::text, 'no')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION alerts_check_claim_tokens(text, bigint[], bigint[]) IS
    'Raises unless there is one claim token per id. Example: SELECT alerts_check_claim_tokens(''release_deliveries'', ARRAY[42], ARRAY[17]);';
-- db/functions/mark_deliveries_sent.sql as it was at @v1.3 (frozen copy).
-- A claimed delivery the provider accepted becomes sent (fenced by its claim token).

CREATE OR REPLACE FUNCTION mark_deliveries_sent(ids bigint[], claim_tokens bigint[],
                                                provider_message_ids text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: only sending -> sent, with sent_at = now(), for rows still 'sending' under the
-- caller's claim_token. A row put back after its lease ended (queued), failed, skipped, sent or
-- claimed again since is untouched: its message may go out once more (at-least-once), but no
-- caller can turn a row it does not hold into 'sent'. Lock: row locks of the UPDATE.
-- Planned on every call with the arrays it gets (plan_cache_mode): from the sixth call on, a
-- session would otherwise reuse a generic plan that expects 10 ids and joins them in a nested
-- loop, 7 times slower for a batch of 500.
DECLARE
    changed integer;
BEGIN
    PERFORM alerts_check_claim_tokens('mark_deliveries_sent', ids, claim_tokens);
    UPDATE user_alert_deliveries d
       SET status = 'sent', sent_at = now(), provider_message_id = o.provider_message_id,
           last_error = NULL, next_retry_at = NULL, lease_expires_at = NULL
      FROM unnest(ids, claim_tokens, provider_message_ids) AS o (id, claim_token, provider_message_id)
     WHERE d.id = ANY (ids)  -- the primary key, whatever the statistics say
       AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION mark_deliveries_sent(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries sent, with the provider''s message ids, where they still carry the given claim tokens. Example: SELECT mark_deliveries_sent(ARRAY[42], ARRAY[17], ARRAY[''msg-1'']);';
-- db/functions/finish_deliveries.sql as it was at @v1.3 (frozen copy).
-- A claimed delivery that will never be sent ends failed or skipped (fenced by its claim token).

-- The one UPDATE behind mark_deliveries_failed() and mark_deliveries_skipped(); not for callers.
CREATE OR REPLACE FUNCTION alerts_finish_deliveries(final_status text, caller text, ids bigint[],
                                                    claim_tokens bigint[], details text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: sending -> final_status ('failed' or 'skipped', for ever) with the detail in
-- last_error, only for rows still carrying the caller's claim_token; other rows untouched.
-- A failed row without a detail says so (the table requires its error). Lock: row locks of the UPDATE.
DECLARE
    changed integer;
BEGIN
    IF final_status IS NULL OR final_status NOT IN ('failed', 'skipped') THEN
        RAISE EXCEPTION 'alerts_finish_deliveries: final_status must be failed or skipped, got %',
            coalesce(final_status, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM alerts_check_claim_tokens(caller, ids, claim_tokens);
    UPDATE user_alert_deliveries d
       SET status = final_status,
           last_error = left(CASE WHEN final_status = 'failed' THEN coalesce(o.detail, 'failed without a reason')
                                  ELSE o.detail END, 2000),
           next_retry_at = NULL, lease_expires_at = NULL
      FROM unnest(ids, claim_tokens, details) AS o (id, claim_token, detail)
     WHERE d.id = ANY (ids) AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION alerts_finish_deliveries(text, text, bigint[], bigint[], text[]) IS
    'Internal: finishes claimed (sending) deliveries as failed or skipped, where they still carry the given claim tokens; call mark_deliveries_failed() or mark_deliveries_skipped(). Example: SELECT alerts_finish_deliveries(''skipped'', ''psql'', ARRAY[42], ARRAY[17], ARRAY[''invalid phone number'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_failed(ids bigint[], claim_tokens bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> failed (permanent) with last_error, only for rows still carrying the
-- caller's claim_token; other rows untouched. Lock: row locks of the UPDATE.
    SELECT alerts_finish_deliveries('failed', 'mark_deliveries_failed', ids, claim_tokens, errors)
$$;
COMMENT ON FUNCTION mark_deliveries_failed(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries permanently failed with their errors, where they still carry the given claim tokens. Example: SELECT mark_deliveries_failed(ARRAY[42], ARRAY[17], ARRAY[''550 no such user'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_skipped(ids bigint[], claim_tokens bigint[], reasons text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> skipped (will never be sent) with the reason in last_error, only for
-- rows still carrying the caller's claim_token. Lock: row locks of the UPDATE.
    SELECT alerts_finish_deliveries('skipped', 'mark_deliveries_skipped', ids, claim_tokens, reasons)
$$;
COMMENT ON FUNCTION mark_deliveries_skipped(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries skipped, e.g. an invalid destination, where they still carry the given claim tokens. Example: SELECT mark_deliveries_skipped(ARRAY[42], ARRAY[17], ARRAY[''invalid phone number'']);';
-- db/functions/requeue_deliveries.sql as it was at @v1.3 (frozen copy).
-- A claimed delivery that failed for now goes back to the queue with a backoff (fenced by its claim token).

CREATE OR REPLACE FUNCTION requeue_deliveries(ids bigint[], claim_tokens bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: after a transient failure, sending -> queued with next_retry_at = now() +
-- alerts_retry_delay(attempts); once attempts reach alerts_config.max_attempts, sending ->
-- failed instead, keeping the last error. Only rows still carrying the caller's claim_token.
-- Lock: row locks of the UPDATE.
DECLARE
    changed integer;
BEGIN
    PERFORM alerts_check_claim_tokens('requeue_deliveries', ids, claim_tokens);
    UPDATE user_alert_deliveries d
       SET status = CASE WHEN d.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END,
           last_error = CASE WHEN d.attempts >= c.max_attempts
                             THEN format('gave up after %s attempts: %s', d.attempts, o.error)
                             ELSE o.error END,
           next_retry_at = CASE WHEN d.attempts >= c.max_attempts THEN NULL
                                ELSE now() + alerts_retry_delay(d.attempts) END,
           lease_expires_at = NULL
      FROM (SELECT u.id, u.claim_token, left(coalesce(u.error, 'transient failure'), 1900) AS error
              FROM unnest(ids, claim_tokens, errors) AS u (id, claim_token, error)) o,
           alerts_config c
     WHERE d.id = ANY (ids) AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION requeue_deliveries(bigint[], bigint[], text[]) IS
    'After a transient failure: puts claimed (sending) deliveries that still carry the given claim tokens back in the queue with a backoff, or fails them once max_attempts is reached. Example: SELECT requeue_deliveries(ARRAY[42], ARRAY[17], ARRAY[''timeout'']);';
-- db/functions/release_deliveries.sql as it was at @v1.3 (frozen copy).
-- A claimed delivery never handed to a provider goes back to the queue (fenced by its claim token).

CREATE OR REPLACE FUNCTION release_deliveries(ids bigint[], claim_tokens bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: sending -> queued, due at once, for rows claimed but never handed to a provider
-- and still carrying the caller's claim_token; gives back the attempt the claim counted.
-- Lock: row locks of the UPDATE.
DECLARE
    changed integer;
BEGIN
    PERFORM alerts_check_claim_tokens('release_deliveries', ids, claim_tokens);
    UPDATE user_alert_deliveries d
       SET status = 'queued', attempts = greatest(d.attempts - 1, 0), lease_expires_at = NULL
      FROM unnest(ids, claim_tokens) AS o (id, claim_token)
     WHERE d.id = ANY (ids) AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION release_deliveries(bigint[], bigint[]) IS
    'Returns claimed deliveries that were never attempted, and still carry the given claim tokens, to the queue and gives back their attempt. Example: SELECT release_deliveries(ARRAY[42], ARRAY[17]);';
REVOKE ALL ON FUNCTION
    alerts_check_claim_tokens(text, bigint[], bigint[]),
    alerts_finish_deliveries(text, text, bigint[], bigint[], text[]),
    mark_deliveries_sent(bigint[], bigint[], text[]), mark_deliveries_failed(bigint[], bigint[], text[]),
    mark_deliveries_skipped(bigint[], bigint[], text[]), requeue_deliveries(bigint[], bigint[], text[]),
    release_deliveries(bigint[], bigint[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    mark_deliveries_sent(bigint[], bigint[], text[]), mark_deliveries_failed(bigint[], bigint[], text[]),
    mark_deliveries_skipped(bigint[], bigint[], text[]), requeue_deliveries(bigint[], bigint[], text[]),
    release_deliveries(bigint[], bigint[])
TO alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
