-- Deploy alerts_v2:reclaim_expired_deliveries@v1.2 (the version tagged v1.2; reworked since, so its included
-- files are inlined as they were then; revert/reclaim_expired_deliveries.sql restores them)
BEGIN;
SET LOCAL lock_timeout = '5s';
-- db/functions/reclaim_expired_deliveries.sql as it was at @v1.2 (frozen copy).
-- Recovery of rows left 'sending' by a runner that died (killed, machine lost):
-- once a row's lease has ended it goes back to the queue with a backoff, or to
-- 'failed' when its attempts are spent.
CREATE OR REPLACE FUNCTION reclaim_expired_deliveries()
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes only rows still 'sending' whose lease has ended, re-checked by
-- the UPDATE itself, so a row completed meanwhile is never overwritten.
-- Lock: row locks of the UPDATE (the runner calls it under alerts_v2_phase_c).
    WITH reclaimed AS (
        UPDATE user_alert_deliveries d
           SET status = CASE WHEN d.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END,
               last_error = format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                   d.lease_expires_at, d.attempts),
               next_retry_at = CASE WHEN d.attempts >= c.max_attempts THEN NULL
                                    ELSE now() + alerts_retry_delay(d.attempts) END,
               lease_expires_at = NULL
          FROM alerts_config c
         WHERE d.status = 'sending' AND d.lease_expires_at < now()
        RETURNING d.status
    )
    SELECT jsonb_build_object(
               'requeued', count(*) FILTER (WHERE status = 'queued'),
               'failed', count(*) FILTER (WHERE status = 'failed'))
      FROM reclaimed
$$;
COMMENT ON FUNCTION reclaim_expired_deliveries() IS
    'Returns rows stuck in sending past their lease to the queue (with backoff), or fails them once their attempts are spent. Example: SELECT reclaim_expired_deliveries();';
COMMIT;
