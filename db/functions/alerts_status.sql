-- The pipeline's health in one jsonb, for monitors and `runner.py --status`.
-- Reads only the small, indexed sets (queued, sending, recent failures, recent runs).
CREATE OR REPLACE FUNCTION alerts_status()
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH queued AS (
        SELECT count(*) FILTER (WHERE coalesce(d.next_retry_at, d.created_at) <= now()) AS due,
               count(*) FILTER (WHERE coalesce(d.next_retry_at, d.created_at) > now()) AS waiting_retry,
               extract(epoch FROM now() - min(coalesce(d.next_retry_at, d.created_at))
                       FILTER (WHERE coalesce(d.next_retry_at, d.created_at) <= now())) AS oldest_due_age
          FROM user_alert_deliveries d
         WHERE d.status = 'queued' AND d.delivery_kind = 'instant'
    ),
    sending AS (
        SELECT count(*) AS claimed, count(*) FILTER (WHERE d.lease_expires_at < now()) AS stuck
          FROM user_alert_deliveries d
         WHERE d.status = 'sending'
    ),
    recent_failures AS (
        SELECT d.id, d.channel, d.attempts, d.last_error, d.created_at
          FROM user_alert_deliveries d
         WHERE d.status = 'failed' AND d.created_at >= now() - interval '24 hours'
    ),
    last_runs AS (
        SELECT DISTINCT ON (r.phase) r.phase, r.status, r.started_at, r.finished_at, r.error
          FROM alerts_runs r
         WHERE r.started_at >= now() - interval '7 days'
         ORDER BY r.phase, r.started_at DESC
    )
    SELECT jsonb_build_object(
        'queued_due', q.due,
        'queued_waiting_retry', q.waiting_retry,
        'oldest_due_age_seconds', round(coalesce(q.oldest_due_age, 0)::numeric, 1),
        'sending', s.claimed,
        'stuck_sending', s.stuck,
        'failed_last_24h', (SELECT count(*) FROM recent_failures),
        'recent_failures', coalesce((SELECT jsonb_agg(to_jsonb(f) ORDER BY f.id DESC)
                                       FROM (SELECT * FROM recent_failures ORDER BY id DESC LIMIT 5) f), '[]'),
        'last_runs', coalesce((SELECT jsonb_object_agg(lr.phase, to_jsonb(lr) - 'phase') FROM last_runs lr), '{}'))
      FROM queued q, sending s
$$;
COMMENT ON FUNCTION alerts_status() IS
    'Queue depth, age of the oldest due delivery, stuck sending rows, recent failures and the last run of each phase. Example: SELECT jsonb_pretty(alerts_status());';
