-- Phase D: queued digest deliveries are gathered, per user, channel and period window
-- (alerts_config.digest_period, UTC), into one alert_digests row each, once the window
-- has closed (plus digest_grace, so a Phase B still committing into it is not cut off).
-- Bounded: one call gathers the windows of at most alerts_config.digest_batch of the oldest
-- waiting members (every member of those windows); the runner calls it until "more" is false.
-- Lock: alerts_v2_phase_d, transaction-scoped.
CREATE OR REPLACE FUNCTION alerts_phase_d()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET jit = off
AS $$
-- Guarantees: one digest per digest_key ({user}:{channel}:{period}:{window start}), and at
-- most one queued digest per (user, channel, period, window) (UNIQUE indexes); every closed
-- queued digest delivery joins exactly one digest; a second run creates nothing.
-- Members that arrive after their window's digest was sent get a digest of their own,
-- keyed {digest_key}:late:{time}, so none is lost. A call takes the windows of the oldest
-- digest_batch waiting members, so the windows it leaves are gathered by the next call.
-- Lock: pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_d')); row locks (FOR SHARE) on the open digests.
DECLARE
    cfg alerts_config;
    unit text;
    batch_user_ids bigint[];
    batch_channels text[];
    batch_window_starts timestamptz[];
    members_seen bigint;
    digests_created bigint;
    members_attached bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_d')) THEN
        RETURN alerts_lock_skipped('d');
    END IF;
    cfg := alerts_settings();
    unit := CASE cfg.digest_period WHEN 'hourly' THEN 'hour' ELSE 'day' END;

    -- This call's windows: those of the oldest digest_batch waiting members (an index range).
    SELECT coalesce(array_agg(w.user_id), '{}'), coalesce(array_agg(w.channel), '{}'),
           coalesce(array_agg(w.window_start), '{}'), coalesce(sum(w.members), 0)
      INTO batch_user_ids, batch_channels, batch_window_starts, members_seen
      FROM (SELECT oldest.user_id, oldest.channel, date_trunc(unit, oldest.created_at) AS window_start,
                   count(*) AS members
              FROM (SELECT d.user_id::bigint AS user_id, d.channel, d.created_at
                      FROM user_alert_deliveries d
                     WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
                       AND d.created_at < date_trunc(unit, now() - cfg.digest_grace)
                     ORDER BY d.created_at
                     LIMIT cfg.digest_batch) oldest
             GROUP BY 1, 2, 3) w;

    WITH closed_windows AS (
        SELECT bw.user_id, bw.channel, bw.window_start
          FROM unnest(batch_user_ids, batch_channels, batch_window_starts) AS bw (user_id, channel, window_start)
    ),
    keyed_windows AS (
        SELECT cw.*, format('%s:%s:%s:%s', cw.user_id, cw.channel, cfg.digest_period,
                            to_char(cw.window_start, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS base_key
          FROM closed_windows cw
    ),
    new_digests AS (
        INSERT INTO alert_digests (digest_key, user_id, channel, period, window_start, window_end)
        SELECT CASE WHEN EXISTS (SELECT 1 FROM alert_digests g WHERE g.digest_key = kw.base_key)
                    THEN kw.base_key || ':late:' || to_char(now(), 'YYYYMMDD"T"HH24MISS.US')
                    ELSE kw.base_key END,
               kw.user_id, kw.channel, cfg.digest_period, kw.window_start,
               kw.window_start + ('1 ' || unit)::interval
          FROM keyed_windows kw
         WHERE NOT EXISTS (SELECT 1 FROM alert_digests g
                            WHERE g.user_id = kw.user_id AND g.channel = kw.channel AND g.period = cfg.digest_period
                              AND g.window_start = kw.window_start AND g.status = 'queued')
        ON CONFLICT DO NOTHING
        RETURNING id
    )
    SELECT count(*) INTO digests_created FROM new_digests;

    -- The open digests are locked FOR SHARE: one a sender claims meanwhile is 'sending' by the
    -- time the lock is granted, drops out here and gets no member its message did not list.
    WITH open_digests AS (
        SELECT g.id, g.user_id, g.channel, g.window_start
          FROM alert_digests g
         WHERE g.status = 'queued' AND g.period = cfg.digest_period
           AND (g.user_id, g.channel, g.window_start) IN (
                   SELECT bw.user_id, bw.channel, bw.window_start
                     FROM unnest(batch_user_ids, batch_channels, batch_window_starts) AS bw (user_id, channel, window_start))
           FOR SHARE
    )
    UPDATE user_alert_deliveries d
       SET digest_id = od.id
      FROM open_digests od
     WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
       AND d.created_at < date_trunc(unit, now() - cfg.digest_grace)
       AND od.user_id = d.user_id AND od.channel = d.channel
       AND d.created_at >= od.window_start AND d.created_at < od.window_start + ('1 ' || unit)::interval;
    GET DIAGNOSTICS members_attached = ROW_COUNT;

    RETURN jsonb_build_object('phase', 'd', 'locked', true, 'skipped', false, 'period', cfg.digest_period,
                              'digests_created', digests_created, 'deliveries_digested', members_attached,
                              'more', members_seen >= cfg.digest_batch);
END;
$$;
COMMENT ON FUNCTION alerts_phase_d() IS
    'Phase D: gathers queued digest deliveries of closed windows into one alert_digests row per user, channel and window, the windows of at most alerts_config.digest_batch members a call. Returns jsonb counts with "more": true while more may wait (call it again), or the skip object when another session runs Phase D. Example: SELECT alerts_phase_d();';
