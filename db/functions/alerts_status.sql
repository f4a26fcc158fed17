-- The pipeline's health in one jsonb, for monitors and `runner.py --status`.
-- Reads only the small, indexed sets (queued, sending, events waiting for fanout, recent
-- failures, recent runs) and the server's lock table.
CREATE OR REPLACE FUNCTION alerts_status()
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes nothing. A phase is stalled when it has runs in alerts_runs of the last
-- 7 days but no successful one (status 'ok', or a running watcher's heartbeat: watch mode records
-- no runs) for longer than alerts_config.max_phase_silence, counted from its first run in that
-- window when it never succeeded; each stalled phase names the sessions holding its advisory
-- lock (pg_locks and pg_stat_activity as alerts_owner sees them: pid, role and application
-- name; the client address and times only when a DBA lets it read all statistics).
-- Lock: none.
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
    waiting_fanout AS (
        SELECT count(*) AS events,
               extract(epoch FROM now() - min(ae.created_at)) AS oldest_age
          FROM alert_events ae, alerts_config c
         WHERE ae.fanout_completed_at IS NULL AND ae.created_at >= now() - c.fanout_lookback
    ),
    phase_runs AS (
        SELECT r.phase,
               max(r.finished_at) FILTER (WHERE r.status = 'ok') AS last_ok_at,
               min(r.started_at) AS first_run_at
          FROM alerts_runs r
         WHERE r.started_at >= now() - interval '7 days'
         GROUP BY r.phase
    ),
    stalled_phases AS (
        SELECT pr.phase, greatest(pr.last_ok_at, w.heartbeat_at) AS last_success_at,
               extract(epoch FROM now() - coalesce(greatest(pr.last_ok_at, w.heartbeat_at), pr.first_run_at))
                   AS silent_seconds,
               extract(epoch FROM c.max_phase_silence) AS limit_seconds,
               alerts_lock_key('alerts_v2_phase_' || pr.phase) AS lock_key
          FROM phase_runs pr
          CROSS JOIN alerts_config c
          CROSS JOIN (SELECT max(aw.heartbeat_at) AS heartbeat_at
                        FROM alerts_watchers aw WHERE aw.status = 'running') w
         WHERE coalesce(greatest(pr.last_ok_at, w.heartbeat_at), pr.first_run_at) < now() - c.max_phase_silence
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
        'last_runs', coalesce((SELECT jsonb_object_agg(lr.phase, to_jsonb(lr) - 'phase') FROM last_runs lr), '{}'),
        'events_waiting_fanout', wf.events,
        'oldest_waiting_fanout_age_seconds', round(coalesce(wf.oldest_age, 0)::numeric, 1),
        'stalled_phases', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'phase', sp.phase, 'last_success_at', sp.last_success_at,
                       'silent_seconds', round(sp.silent_seconds::numeric, 1),
                       'limit_seconds', round(sp.limit_seconds::numeric, 1),
                       'lock_holders', coalesce((
                           SELECT jsonb_agg(jsonb_build_object(
                                      'pid', a.pid, 'role', a.usename, 'application_name', a.application_name,
                                      'client_addr', host(a.client_addr), 'connected_at', a.backend_start,
                                      'state_since', a.state_change, 'mode', l.mode) ORDER BY a.pid)
                             FROM pg_locks l
                             JOIN pg_stat_activity a ON a.pid = l.pid
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                              AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                              AND ((l.classid::bigint << 32) | l.objid::bigint) = sp.lock_key), '[]'))
                   ORDER BY sp.phase)
              FROM stalled_phases sp), '[]'))
      FROM queued q, sending s, waiting_fanout wf
$$;
COMMENT ON FUNCTION alerts_status() IS
    'Queue depth, age of the oldest due delivery, stuck sending rows, events waiting for fanout and the oldest one''s age, recent failures, the last run of each phase, and phases without a successful run for longer than alerts_config.max_phase_silence with the holders of their locks. Example: SELECT jsonb_pretty(alerts_status());';
