-- Deploy alerts_v2:record_outcomes@v1.1 (the version tagged v1.1; reworked since, so its included
-- files are inlined as they were then; revert/record_outcomes.sql restores them)
BEGIN;
SET LOCAL lock_timeout = '5s';
-- db/functions/record_outcomes.sql as it was at @v1.1 (frozen copy).
-- Recording what a sender did with the deliveries it claimed. Every function
-- changes a row only while it is still 'sending' (re-checked by the UPDATE itself),
-- so a late or repeated call can never overwrite a row another path completed.
-- Each returns the number of rows it changed. ids[i] goes with the i-th detail.

CREATE OR REPLACE FUNCTION mark_deliveries_sent(ids bigint[], provider_message_ids text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> sent with sent_at = now(); other rows untouched. Lock: row locks of the UPDATE.
-- plpgsql, not sql: the hot path of Phase C (one call per batch) keeps its plan for the session,
-- where a SECURITY DEFINER sql function is parsed and planned again on every call.
DECLARE
    changed integer;
BEGIN
    UPDATE user_alert_deliveries d
       SET status = 'sent', sent_at = now(), provider_message_id = o.provider_message_id,
           last_error = NULL, next_retry_at = NULL, lease_expires_at = NULL
      FROM unnest(ids, provider_message_ids) AS o (id, provider_message_id)
     WHERE d.id = ANY (ids)  -- the primary key, whatever the statistics say
       AND d.id = o.id AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION mark_deliveries_sent(bigint[], text[]) IS
    'Marks claimed (sending) deliveries sent, with the provider''s message ids. Example: SELECT mark_deliveries_sent(ARRAY[42], ARRAY[''msg-1'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_failed(ids bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> failed (permanent) with last_error; other rows untouched. Lock: row locks of the UPDATE.
    WITH outcome AS (
        SELECT o.id, o.error FROM unnest(ids, errors) AS o (id, error)
    ),
    failed_deliveries AS (
        UPDATE user_alert_deliveries d
           SET status = 'failed', last_error = left(coalesce(o.error, 'failed without a reason'), 2000),
               next_retry_at = NULL, lease_expires_at = NULL
          FROM outcome o
         WHERE d.id = o.id AND d.status = 'sending'
        RETURNING d.id
    )
    SELECT count(*)::integer FROM failed_deliveries
$$;
COMMENT ON FUNCTION mark_deliveries_failed(bigint[], text[]) IS
    'Marks claimed (sending) deliveries permanently failed with their errors. Example: SELECT mark_deliveries_failed(ARRAY[42], ARRAY[''550 no such user'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_skipped(ids bigint[], reasons text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> skipped (will never be sent) with the reason in last_error. Lock: row locks of the UPDATE.
    WITH outcome AS (
        SELECT o.id, o.reason FROM unnest(ids, reasons) AS o (id, reason)
    ),
    skipped_deliveries AS (
        UPDATE user_alert_deliveries d
           SET status = 'skipped', last_error = left(o.reason, 2000), next_retry_at = NULL,
               lease_expires_at = NULL
          FROM outcome o
         WHERE d.id = o.id AND d.status = 'sending'
        RETURNING d.id
    )
    SELECT count(*)::integer FROM skipped_deliveries
$$;
COMMENT ON FUNCTION mark_deliveries_skipped(bigint[], text[]) IS
    'Marks claimed (sending) deliveries skipped, e.g. an invalid destination. Example: SELECT mark_deliveries_skipped(ARRAY[42], ARRAY[''invalid phone number'']);';

CREATE OR REPLACE FUNCTION requeue_deliveries(ids bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> queued with next_retry_at = now() + alerts_retry_delay(attempts)
-- after a transient failure; once attempts reach alerts_config.max_attempts, sending ->
-- failed instead, keeping the last error. Lock: row locks of the UPDATE.
    WITH outcome AS (
        SELECT o.id, left(coalesce(o.error, 'transient failure'), 1900) AS error
          FROM unnest(ids, errors) AS o (id, error)
    ),
    requeued_deliveries AS (
        UPDATE user_alert_deliveries d
           SET status = CASE WHEN d.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END,
               last_error = CASE WHEN d.attempts >= c.max_attempts
                                 THEN format('gave up after %s attempts: %s', d.attempts, o.error)
                                 ELSE o.error END,
               next_retry_at = CASE WHEN d.attempts >= c.max_attempts THEN NULL
                                    ELSE now() + alerts_retry_delay(d.attempts) END,
               lease_expires_at = NULL
          FROM outcome o, alerts_config c
         WHERE d.id = o.id AND d.status = 'sending'
        RETURNING d.id
    )
    SELECT count(*)::integer FROM requeued_deliveries
$$;
COMMENT ON FUNCTION requeue_deliveries(bigint[], text[]) IS
    'After a transient failure: puts claimed (sending) deliveries back in the queue with a backoff, or fails them once max_attempts is reached. Example: SELECT requeue_deliveries(ARRAY[42], ARRAY[''timeout'']);';

CREATE OR REPLACE FUNCTION release_deliveries(ids bigint[])
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> queued, due at once, for rows claimed but never handed to a
-- provider; gives back the attempt the claim counted. Lock: row locks of the UPDATE.
    WITH released_deliveries AS (
        UPDATE user_alert_deliveries d
           SET status = 'queued', attempts = greatest(d.attempts - 1, 0), lease_expires_at = NULL
         WHERE d.id = ANY (ids) AND d.status = 'sending'
        RETURNING d.id
    )
    SELECT count(*)::integer FROM released_deliveries
$$;
COMMENT ON FUNCTION release_deliveries(bigint[]) IS
    'Returns claimed deliveries that were never attempted to the queue and gives back their attempt. Example: SELECT release_deliveries(ARRAY[42]);';
COMMIT;
