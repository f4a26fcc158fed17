-- A claimed delivery that failed for now goes back to the queue with a backoff (fenced by its claim token).

CREATE OR REPLACE FUNCTION requeue_deliveries(ids bigint[], claim_tokens bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: after a transient failure, sending -> queued with next_retry_at = now() +
-- alerts_retry_delay(attempts); once attempts reach alerts_config.max_attempts, sending ->
-- failed instead, keeping the last error. Only rows still carrying the caller's claim_token.
-- Lock: row locks of the UPDATE (alerts_record_delivery_outcomes()).
    SELECT alerts_record_delivery_outcomes('requeue_deliveries', ids, claim_tokens,
                                           array_fill('requeue'::text, ARRAY[coalesce(cardinality(ids), 0)]), errors)
$$;
COMMENT ON FUNCTION requeue_deliveries(bigint[], bigint[], text[]) IS
    'After a transient failure: puts claimed (sending) deliveries that still carry the given claim tokens back in the queue with a backoff, or fails them once max_attempts is reached. Example: SELECT requeue_deliveries(ARRAY[42], ARRAY[17], ARRAY[''timeout'']);';
