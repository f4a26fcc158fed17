-- Watch mode's bookkeeping: one alerts_watchers row per named watcher (its heartbeat, its
-- last pass), when the next timed wake-up is due, and the watchers' health for --status.

CREATE OR REPLACE FUNCTION alerts_watcher_started(watcher text, watcher_host text, watcher_pid integer)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: one row per watcher name, (re)opened as 'running' with a fresh heartbeat; a
-- watcher restarted under the same name takes its row over. Lock: row lock of the upsert.
    INSERT INTO alerts_watchers AS w (name, host, pid)
    VALUES (watcher, watcher_host, watcher_pid)
    ON CONFLICT (name) DO UPDATE
       SET host = excluded.host, pid = excluded.pid, status = 'running', started_at = now(),
           heartbeat_at = now(), stopped_at = NULL, passes = 0, last_pass = NULL, last_error = NULL
$$;
COMMENT ON FUNCTION alerts_watcher_started(text, text, integer) IS
    'Registers a watcher (runner.py --watch) as running. Example: SELECT alerts_watcher_started(''db1-watch'', ''db1'', 4242);';

CREATE OR REPLACE FUNCTION alerts_watcher_beat(watcher text, pass_counts jsonb DEFAULT NULL,
                                               pass_error text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: moves the heartbeat of a 'running' watcher to now(); with pass_counts, counts one
-- more pass and keeps its counts; with pass_error, keeps the error (until the next good pass).
-- Returns false when the row is missing or stopped. Lock: row lock of the UPDATE.
    WITH beaten AS (
        UPDATE alerts_watchers w
           SET heartbeat_at = now(),
               passes = w.passes + (pass_counts IS NOT NULL OR pass_error IS NOT NULL)::integer,
               last_pass = coalesce(pass_counts, w.last_pass),
               last_error = CASE WHEN pass_counts IS NOT NULL THEN NULL
                                 ELSE coalesce(left(pass_error, 2000), w.last_error) END
         WHERE w.name = watcher AND w.status = 'running'
        RETURNING w.name
    )
    SELECT count(*) = 1 FROM beaten
$$;
COMMENT ON FUNCTION alerts_watcher_beat(text, jsonb, text) IS
    'Heartbeat of a running watcher, with the counts or the error of the pass it just made. Example: SELECT alerts_watcher_beat(''db1-watch'', ''{"c": {"sent": 3}}'');';

CREATE OR REPLACE FUNCTION alerts_watcher_stopped(watcher text)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: a 'running' watcher becomes 'stopped' (a graceful exit), so --status stops
-- expecting heartbeats from it. Lock: row lock of the UPDATE.
    WITH stopped AS (
        UPDATE alerts_watchers w SET status = 'stopped', stopped_at = greatest(now(), w.started_at)
         WHERE w.name = watcher AND w.status = 'running'
        RETURNING w.name
    )
    SELECT count(*) = 1 FROM stopped
$$;
COMMENT ON FUNCTION alerts_watcher_stopped(text) IS
    'Marks a watcher stopped after a graceful exit. Example: SELECT alerts_watcher_stopped(''db1-watch'');';

CREATE OR REPLACE FUNCTION alerts_next_wake()
RETURNS timestamptz
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
    -- The earliest future moment at which work falls due without any new row: a queued
    -- delivery's or digest's retry, a claim's lease expiry, or the close of the current
    -- digest window (plus digest_grace). Each min() is one step down a partial index.
    WITH retries AS (
        SELECT min(coalesce(d.next_retry_at, d.created_at)) AS at
          FROM user_alert_deliveries d
         WHERE d.status = 'queued' AND d.delivery_kind = 'instant'
           AND coalesce(d.next_retry_at, d.created_at) > now()
        UNION ALL
        SELECT min(coalesce(g.next_retry_at, g.created_at))
          FROM alert_digests g
         WHERE g.status = 'queued' AND coalesce(g.next_retry_at, g.created_at) > now()
    ),
    leases AS (
        -- Future ends only: a lease already over is reclaimed by the next Phase C, and while another
        -- process holds Phase C a past time here would wake the watcher over and over.
        SELECT min(d.lease_expires_at) AS at FROM user_alert_deliveries d
         WHERE d.status = 'sending' AND d.lease_expires_at > now()
        UNION ALL
        SELECT min(g.lease_expires_at) FROM alert_digests g WHERE g.status = 'sending' AND g.lease_expires_at > now()
    ),
    digest_window_close AS (
        SELECT date_trunc(unit, now() - c.digest_grace) + ('1 ' || unit)::interval + c.digest_grace AS at
          FROM alerts_config c
         CROSS JOIN LATERAL (SELECT CASE c.digest_period WHEN 'hourly' THEN 'hour' ELSE 'day' END AS unit) u
    )
    SELECT least((SELECT min(at) FROM retries),
                 -- a lease is reclaimable just after it ends
                 (SELECT min(at) FROM leases) + interval '10 milliseconds',
                 (SELECT min(at) FROM digest_window_close))
$$;
COMMENT ON FUNCTION alerts_next_wake() IS
    'When a watcher must wake without a notification: the next retry, lease expiry or digest window close. Example: SELECT alerts_next_wake() - now();';

CREATE OR REPLACE FUNCTION alerts_watch_status(max_silence interval DEFAULT interval '5 minutes')
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    -- Every watcher with its heartbeat age; 'silent' lists the running ones whose heartbeat is
    -- older than max_silence: dead (killed, machine gone) or stuck in one pass.
    WITH watchers AS (
        SELECT w.name, w.host, w.pid, w.status, w.started_at, w.heartbeat_at, w.stopped_at, w.passes,
               w.last_pass, w.last_error,
               round(extract(epoch FROM now() - w.heartbeat_at)::numeric, 1) AS heartbeat_age_seconds
          FROM alerts_watchers w
    )
    SELECT jsonb_build_object(
        'watchers', coalesce((SELECT jsonb_agg(to_jsonb(w) ORDER BY w.name) FROM watchers w), '[]'),
        'running', (SELECT count(*) FROM watchers w WHERE w.status = 'running'),
        'silent', coalesce((SELECT jsonb_agg(w.name ORDER BY w.name) FROM watchers w
                             WHERE w.status = 'running' AND w.heartbeat_at < now() - max_silence), '[]'))
$$;
COMMENT ON FUNCTION alerts_watch_status(interval) IS
    'The watchers (runner.py --watch), their heartbeats and the running ones silent for longer than max_silence. Example: SELECT jsonb_pretty(alerts_watch_status(interval ''2 minutes''));';
