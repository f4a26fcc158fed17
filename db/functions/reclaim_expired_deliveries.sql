-- Recovery of rows left 'sending' by a runner that died (killed, frozen, machine lost):
-- once a row's lease has ended it goes back to the queue with a backoff, or to
-- 'failed' when its attempts are spent. Bounded: at most alerts_config.reclaim_batch rows
-- a call; the runner calls it until it reports "more": false.
CREATE OR REPLACE FUNCTION reclaim_expired_deliveries()
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes only rows still 'sending' whose lease has ended, re-checked by
-- the UPDATE itself, so a row completed meanwhile is never overwritten; at most reclaim_batch
-- rows a call, taken with SKIP LOCKED, so senders reclaiming side by side neither wait for
-- nor deadlock with each other (a row another caller holds is theirs to reclaim).
-- Lock: row locks only (the runner calls it under alerts_v2_phase_c, shared).
    WITH expired_claims AS (
        -- In a CTE so the LIMIT ... SKIP LOCKED runs once (PostgreSQL bug #15715).
        SELECT d.id
          FROM user_alert_deliveries d
         WHERE d.status = 'sending' AND d.lease_expires_at < now()
         ORDER BY d.lease_expires_at
         LIMIT (SELECT c.reclaim_batch FROM alerts_config c)
           FOR UPDATE SKIP LOCKED
    ),
    reclaimed AS (
        UPDATE user_alert_deliveries d
           SET status = CASE WHEN d.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END,
               last_error = format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                   d.lease_expires_at, d.attempts),
               next_retry_at = CASE WHEN d.attempts >= c.max_attempts THEN NULL
                                    ELSE now() + alerts_retry_delay(d.attempts) END,
               lease_expires_at = NULL
          FROM alerts_config c
         WHERE d.id IN (SELECT ec.id FROM expired_claims ec)
           AND d.status = 'sending' AND d.lease_expires_at < now()
        RETURNING d.status
    )
    SELECT jsonb_build_object(
               'requeued', count(*) FILTER (WHERE status = 'queued'),
               'failed', count(*) FILTER (WHERE status = 'failed'),
               'more', count(*) >= (SELECT c.reclaim_batch FROM alerts_config c))
      FROM reclaimed
$$;
COMMENT ON FUNCTION reclaim_expired_deliveries() IS
    'Returns up to alerts_config.reclaim_batch rows stuck in sending past their lease to the queue (with backoff), or fails them once their attempts are spent; "more": true when the batch was full. Call it until "more" is false. Example: SELECT reclaim_expired_deliveries();';
