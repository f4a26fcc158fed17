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
