-- Digests left sending past their lease go back to the queue (or fail once their attempts are spent).

CREATE OR REPLACE FUNCTION reclaim_expired_digests()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as reclaim_expired_deliveries(), for digests: only digests still 'sending' past
-- their lease, re-checked (with their claim token) by alerts_requeue_digests(), which merges a
-- digest into one already queued for its window instead of failing on it; a digest failed here
-- fails its queued members too. Lock: row locks of the UPDATEs.
DECLARE
    expired_ids bigint[];
    expired_tokens bigint[];
    expired_errors text[];
BEGIN
    SELECT coalesce(array_agg(g.id ORDER BY g.id), '{}'), coalesce(array_agg(g.claim_token ORDER BY g.id), '{}'),
           coalesce(array_agg(format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                     g.lease_expires_at, g.attempts) ORDER BY g.id), '{}')
      INTO expired_ids, expired_tokens, expired_errors
      FROM alert_digests g
     WHERE g.status = 'sending' AND g.lease_expires_at < now();
    RETURN alerts_requeue_digests(expired_ids, expired_tokens, expired_errors, false);
END;
$$;
COMMENT ON FUNCTION reclaim_expired_digests() IS
    'Returns digests stuck in sending past their lease to the queue (with backoff), or fails them and their members once their attempts are spent. Example: SELECT reclaim_expired_digests();';
