-- The one fenced UPDATE behind every delivery outcome function (mark_deliveries_sent/failed/
-- skipped, requeue_deliveries, release_deliveries): one outcome per row, unnested beside its id,
-- claim token and detail; not for callers.

CREATE OR REPLACE FUNCTION alerts_record_delivery_outcomes(caller text, ids bigint[], claim_tokens bigint[],
                                                           outcomes text[], details text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: ids[i] changes only while it is still 'sending' under claim_tokens[i] (re-checked by
-- the UPDATE itself), so a stale sender overwrites nothing; every other row is untouched. Per row,
-- outcomes[i] with details[i]:
--   sent     -> sent, sent_at = now(), provider_message_id = the detail, no error, no retry;
--   failed   -> failed for ever, last_error = the detail (or 'failed without a reason');
--   skipped  -> skipped for ever, last_error = the detail;
--   requeue  -> queued after alerts_retry_delay(attempts), last_error = the detail (or 'transient
--               failure'); once attempts reach alerts_config.max_attempts, failed instead
--               ('gave up after n attempts: …');
--   release  -> queued, the attempt the claim counted given back, error and retry time kept.
-- Every row leaves its lease. Returns the number of rows changed; the caller counts the rest as
-- stale. Lock: row locks of the UPDATE.
-- Planned on every call with the arrays it gets (plan_cache_mode): from the sixth call on, a
-- session would otherwise reuse a generic plan that expects 10 ids and joins them in a nested
-- loop, 7 times slower for a batch of 500.
DECLARE
    changed integer;
    attempts_cap integer;
BEGIN
    PERFORM alerts_check_claim_tokens(caller, ids, claim_tokens);
    IF outcomes IS NULL OR cardinality(outcomes) <> cardinality(ids)
       OR NOT outcomes <@ ARRAY['sent', 'failed', 'skipped', 'requeue', 'release'] THEN
        RAISE EXCEPTION '%: pass one outcome per id (sent, failed, skipped, requeue or release), got %',
            caller, coalesce(outcomes::text, 'none') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF 'requeue' = ANY (outcomes) THEN
        SELECT c.max_attempts INTO attempts_cap FROM alerts_config c;
    END IF;
    UPDATE user_alert_deliveries d
       SET status = CASE o.outcome WHEN 'release' THEN 'queued'
                                   WHEN 'requeue' THEN CASE WHEN d.attempts >= attempts_cap THEN 'failed'
                                                            ELSE 'queued' END
                                   ELSE o.outcome END,
           attempts = CASE WHEN o.outcome = 'release' THEN greatest(d.attempts - 1, 0) ELSE d.attempts END,
           sent_at = CASE WHEN o.outcome = 'sent' THEN now() ELSE d.sent_at END,
           provider_message_id = CASE WHEN o.outcome = 'sent' THEN o.detail ELSE d.provider_message_id END,
           last_error = CASE o.outcome
                            WHEN 'sent' THEN NULL
                            WHEN 'failed' THEN left(coalesce(o.detail, 'failed without a reason'), 2000)
                            WHEN 'skipped' THEN left(o.detail, 2000)
                            WHEN 'requeue' THEN
                                CASE WHEN d.attempts >= attempts_cap
                                     THEN format('gave up after %s attempts: %s', d.attempts,
                                                 left(coalesce(o.detail, 'transient failure'), 1900))
                                     ELSE left(coalesce(o.detail, 'transient failure'), 1900) END
                            ELSE d.last_error END,
           next_retry_at = CASE o.outcome
                               WHEN 'release' THEN d.next_retry_at
                               WHEN 'requeue' THEN CASE WHEN d.attempts >= attempts_cap THEN NULL
                                                        ELSE now() + alerts_retry_delay(d.attempts) END
                               ELSE NULL END,
           lease_expires_at = NULL
      FROM unnest(ids, claim_tokens, outcomes, details) AS o (id, claim_token, outcome, detail)
     WHERE d.id = ANY (ids)  -- the primary key, whatever the statistics say
       AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION alerts_record_delivery_outcomes(text, bigint[], bigint[], text[], text[]) IS
    'Internal: records one outcome per claimed (sending) delivery (sent, failed, skipped, requeue or release), where it still carries the given claim token; call the outcome functions (mark_deliveries_sent() and the others). Example: SELECT alerts_record_delivery_outcomes(''psql'', ARRAY[42, 43], ARRAY[17, 17], ARRAY[''sent'', ''release''], ARRAY[''msg-1'', NULL]);';
