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
