-- A claimed delivery never handed to a provider goes back to the queue (fenced by its claim token).

CREATE OR REPLACE FUNCTION release_deliveries(ids bigint[], claim_tokens bigint[])
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> queued, due at once, for rows claimed but never handed to a provider
-- and still carrying the caller's claim_token; gives back the attempt the claim counted.
-- Lock: row locks of the UPDATE (alerts_record_delivery_outcomes()).
    SELECT alerts_record_delivery_outcomes('release_deliveries', ids, claim_tokens,
                                           array_fill('release'::text, ARRAY[coalesce(cardinality(ids), 0)]), NULL)
$$;
COMMENT ON FUNCTION release_deliveries(bigint[], bigint[]) IS
    'Returns claimed deliveries that were never attempted, and still carry the given claim tokens, to the queue and gives back their attempt. Example: SELECT release_deliveries(ARRAY[42], ARRAY[17]);';
