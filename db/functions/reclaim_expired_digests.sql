-- Digests left sending past their lease go back to the queue (or fail once their attempts are spent).
-- Bounded: one call takes the expired digests, oldest lease first, whose rows (the digest and its
-- members) add up to alerts_config.reclaim_batch (at least one digest); "more": true when some
-- were left for the next call.

CREATE OR REPLACE FUNCTION reclaim_expired_digests()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as reclaim_expired_deliveries(), for digests: only digests still 'sending' past
-- their lease, re-checked (with their claim token) by alerts_requeue_digests(), which merges a
-- digest into one already queued for its window instead of failing on it; a digest failed here
-- fails its queued members too. Digests another caller holds are passed over (SKIP LOCKED), so
-- senders reclaiming side by side neither wait for nor deadlock with each other.
-- Lock: row locks of the UPDATEs.
DECLARE
    row_budget integer := coalesce((SELECT c.reclaim_batch FROM alerts_config c), 5000);
    expired_ids bigint[];
    expired_tokens bigint[];
    expired_errors text[];
    candidates integer;
BEGIN
    WITH expired_digests AS (
        SELECT g.id, g.claim_token, g.lease_expires_at, g.attempts
          FROM alert_digests g
         WHERE g.status = 'sending' AND g.lease_expires_at < now()
         ORDER BY g.lease_expires_at, g.id
         LIMIT row_budget
           FOR UPDATE SKIP LOCKED
    ),
    sized_digests AS (
        -- Rows this reclaim changes up to and including each digest: the digest and its members.
        SELECT ed.*, sum(1 + (SELECT count(*) FROM user_alert_deliveries d WHERE d.digest_id = ed.id))
                         OVER (ORDER BY ed.lease_expires_at, ed.id) AS rows_through
          FROM expired_digests ed
    ),
    taken_digests AS (
        SELECT sd.* FROM sized_digests sd
         WHERE sd.rows_through <= row_budget
            OR sd.id = (SELECT first.id FROM sized_digests first ORDER BY first.lease_expires_at, first.id LIMIT 1)
    )
    SELECT coalesce(array_agg(td.id ORDER BY td.id), '{}'), coalesce(array_agg(td.claim_token ORDER BY td.id), '{}'),
           coalesce(array_agg(format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                     td.lease_expires_at, td.attempts) ORDER BY td.id), '{}'),
           (SELECT count(*) FROM expired_digests)
      INTO expired_ids, expired_tokens, expired_errors, candidates
      FROM taken_digests td;
    RETURN alerts_requeue_digests(expired_ids, expired_tokens, expired_errors, false)
           || jsonb_build_object('more', candidates > cardinality(expired_ids) OR candidates >= row_budget);
END;
$$;
COMMENT ON FUNCTION reclaim_expired_digests() IS
    'Returns digests stuck in sending past their lease to the queue (with backoff), or fails them and their members once their attempts are spent, at most alerts_config.reclaim_batch rows a call; "more": true when some are left. Example: SELECT reclaim_expired_digests();';
