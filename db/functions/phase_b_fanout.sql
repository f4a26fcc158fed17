-- Phase B: every alert event not yet fanned out (within alerts_config.fanout_lookback)
-- becomes one delivery per (event, user, channel, kind) for the users whose plan
-- and preferences match (CONTRACT.md, "Who gets a delivery"), and is marked
-- fanned out with its last range of users, also when nobody matched.
-- Bounded: one call considers at most max_rows (event, user) pairs (alerts_config.fanout_chunk_rows
-- when NULL): the events of one group (those whose fanout stands at the same user, the oldest
-- first) times the next range of users by id. Call it until it returns "done": true; each call
-- is its own transaction, so a DBA's statement_timeout bounds a call, not the backlog.
-- Lock: alerts_v2_phase_b, transaction-scoped (safe behind PgBouncer).
--
-- The rules of who gets a delivery are the alerts_rule_* functions and alerts_plan_channels()
-- (db/functions/eligibility_rules.sql), inlined by the planner, which alerts_explain() applies too.
--
-- Choices where the contract is silent:
--   * a user whose several prefs match one event gets one delivery per channel:
--     instant when any matching pref (or the plan default) says instant;
--   * daily quotas count today's (UTC) deliveries of that user and channel that
--     were not skipped; when an event would exceed it, the most severe events of the group win
--     (a user is in one range of a group, so the group's events compete; an event of a later
--     group finds the earlier group's deliveries already counted);
--   * events join a group only before their first range: an event that arrives while a group is
--     in progress waits for it, so that every call reads one contiguous range of users by index;
--   * a malformed delivery_config value (wrong JSON type) counts as missing;
--   * a user who unsubscribed from a channel (alerts_channel_optouts, alerts_unsubscribe()) gets no
--     delivery on it;
--   * a pref's threshold is a risk score (0-100) and applies to spikes only: a spike matches
--     when its risk_score is at least the threshold or it fired on its rise (fired_on_rise);
--     a spike event stored before those columns existed (risk_score NULL) matches every
--     threshold, since it fired under the alert's own rule and dropping it would lose it;
--     HIGH_IMPACT_EVENT ignores the threshold, as the original application does;
--   * fanout_completed_at is the clock when the last range's statement runs, never earlier than the
--     event's created_at: an event Phase A committed after this transaction began (while
--     alerts_analyze_if_stale() waited for a lock) is visible to the statement and has a
--     created_at later than now().
CREATE OR REPLACE FUNCTION alerts_phase_b(max_events integer, max_rows integer)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET jit = off
SET work_mem = '64MB'
SET enable_nestloop = off
AS $$
-- Guarantees: at most one delivery per (event, user, channel, kind) (the UNIQUE key; ON
-- CONFLICT DO NOTHING when some exist already); an event's range of users gets its deliveries and
-- its new fanout_user_cursor in one transaction, and the last range sets fanout_completed_at, so a
-- crash between calls repeats nothing and loses nothing; fanout_completed_at is never before the
-- event's created_at (alert_events_fanout_after_creation), also for an event committed after this
-- transaction started. One call considers at most max_rows (event, user) pairs, and at most
-- max_events events (NULL: as many as the row budget allows).
-- Lock: pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_b')).
DECLARE
    cfg alerts_config;
    row_budget integer;
    group_cursor bigint;
    group_event_ids bigint[];
    users_per_range integer;
    range_end bigint;
    counts jsonb;
    -- The fanout statement. $1: cfg.fanout_lookback, $2: the group's event ids (locked), $3: the
    -- range's start (users.id > $3; NULL: from the first user), $4: its end (users.id <= $4; NULL:
    -- to the last user, which completes the group). /* on conflict */ marks where the fallback adds
    -- its ON CONFLICT clause.
    fanout_sql constant text := $fanout$
    WITH pending_events AS MATERIALIZED (
        SELECT ae.id, ae.alert_type, ae.scope_region, ae.scope_assets, ae.severity, ae.risk_score,
               ae.fired_on_rise, ae.created_at
          FROM alert_events ae
         WHERE ae.id = ANY ($2)
    ),
    plan_channels AS MATERIALIZED (
        -- One row per (plan, channel) that the plan enables, with its daily cap and default kind.
        SELECT pc.plan_code, pc.allowed_alert_types, pc.channel, pc.max_per_day, pc.digest_by_default
          FROM alerts_plan_channels() pc
         WHERE pc.enabled
    ),
    range_prefs AS MATERIALIZED (
        -- The enabled prefs of pending alert types of the users in this range.
        SELECT p.user_id, p.alert_type, p.region, p.asset, p.threshold, p.delivery_mode
          FROM user_alert_prefs p
         WHERE p.enabled IS TRUE
           AND p.alert_type IN (SELECT alert_type FROM pending_events)
           AND ($3::bigint IS NULL OR p.user_id > $3::bigint)
           AND ($4::bigint IS NULL OR p.user_id <= $4::bigint)
    ),
    user_channels AS MATERIALIZED (
        -- Once per user, not once per (event, user): the channels a user can receive on (plan
        -- enables it, destination present, not unverified), for users of the range with an enabled
        -- pref of a pending alert type. Hash-joined below instead of two index look-ups per (event, user).
        SELECT u.id AS user_id, pc.channel, pc.max_per_day, pc.digest_by_default, pc.allowed_alert_types
          FROM users u
          LEFT JOIN user_plans up ON up.user_id = u.id
          JOIN plan_channels pc ON pc.plan_code = alerts_rule_user_plan(up.plan)
         WHERE alerts_rule_user_reachable(u.email_verified)
           AND ($3::bigint IS NULL OR u.id > $3::bigint)
           AND ($4::bigint IS NULL OR u.id <= $4::bigint)
           AND u.id IN (SELECT rp.user_id FROM range_prefs rp)
           -- the user unsubscribed from the channel (alerts_unsubscribe(): a one-click link)
           AND NOT EXISTS (SELECT 1 FROM alerts_channel_optouts o
                            WHERE o.user_id = u.id AND o.channel = pc.channel)
           AND alerts_user_destination(u, pc.channel) IS NOT NULL
    ),
    matching_users AS (
        -- One row per (event, user) with at least one enabled matching pref.
        SELECT pe.id AS alert_event_id, pe.alert_type, pe.severity, p.user_id,
               bool_or(p.delivery_mode = 'instant') AS wants_instant,
               bool_or(p.delivery_mode IS NULL OR p.delivery_mode NOT IN ('instant', 'digest')) AS wants_plan_default
          FROM pending_events pe
          JOIN range_prefs p
            ON p.alert_type = pe.alert_type
           AND alerts_rule_region(p.region, pe.scope_region)
           AND alerts_rule_asset(p.asset, pe.scope_assets)
           AND alerts_rule_threshold(p.threshold, pe.alert_type, pe.risk_score, pe.fired_on_rise)
         GROUP BY pe.id, pe.alert_type, pe.severity, p.user_id
    ),
    eligible_deliveries AS (
        SELECT mu.alert_event_id, mu.user_id, mu.severity, uc.channel, uc.max_per_day,
               CASE
                   WHEN mu.wants_instant THEN 'instant'
                   WHEN mu.wants_plan_default AND NOT uc.digest_by_default THEN 'instant'
                   ELSE 'digest'
               END AS delivery_kind
          FROM matching_users mu
          JOIN user_channels uc
            ON uc.user_id = mu.user_id
           AND alerts_rule_plan_allows(uc.allowed_alert_types, mu.alert_type)
    ),
    capped_deliveries AS (
        SELECT ed.*,
               row_number() OVER (PARTITION BY ed.user_id, ed.channel
                                  ORDER BY ed.severity DESC, ed.alert_event_id) AS nth_new_today
          FROM eligible_deliveries ed
         WHERE ed.max_per_day IS NOT NULL
    ),
    delivered_today AS (
        SELECT d.user_id, d.channel, count(*) AS n
          FROM user_alert_deliveries d
         WHERE alerts_rule_counts_toward_cap(d.status, d.created_at, now())
           AND (d.user_id, d.channel) IN (SELECT cd.user_id, cd.channel FROM capped_deliveries cd)
         GROUP BY d.user_id, d.channel
    ),
    deliveries_to_create AS (
        SELECT ed.alert_event_id, ed.user_id, ed.channel, ed.delivery_kind
          FROM eligible_deliveries ed
         WHERE ed.max_per_day IS NULL
        UNION ALL
        SELECT cd.alert_event_id, cd.user_id, cd.channel, cd.delivery_kind
          FROM capped_deliveries cd
          LEFT JOIN delivered_today dt ON dt.user_id = cd.user_id AND dt.channel = cd.channel
         WHERE coalesce(dt.n, 0) + cd.nth_new_today <= cd.max_per_day
    ),
    inserted_deliveries AS (
        INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)
        SELECT alert_event_id, user_id, channel, delivery_kind FROM deliveries_to_create
         ORDER BY alert_event_id, user_id  -- the unique key's order: index pages filled in turn, not at random
        /* on conflict */
        RETURNING channel, delivery_kind
    ),
    advanced_events AS (
        -- The last range completes the group's events; any other moves their cursor to its end.
        UPDATE alert_events ae
           SET fanout_completed_at = CASE WHEN $4::bigint IS NULL THEN greatest(clock_timestamp(), pe.created_at) END,
               fanout_user_cursor = $4::bigint
          FROM pending_events pe
         WHERE ae.id = pe.id
        RETURNING ae.id, ae.fanout_completed_at IS NOT NULL AS completed
    ),
    created_by_channel AS (
        SELECT coalesce(jsonb_object_agg(channel || ':' || delivery_kind, n), '{}') AS by_channel,
               coalesce(sum(n), 0) AS total
          FROM (SELECT channel, delivery_kind, count(*) AS n
                  FROM inserted_deliveries GROUP BY channel, delivery_kind) t
    )
    SELECT jsonb_build_object(
               'phase', 'b', 'locked', true, 'skipped', false,
               'events_fanned_out', (SELECT count(*) FILTER (WHERE completed) FROM advanced_events),
               'events_in_progress', (SELECT count(*) FILTER (WHERE NOT completed) FROM advanced_events),
               'deliveries_created', cbc.total,
               'deliveries_by_channel', cbc.by_channel,
               'deliveries_existing', (SELECT count(*) FROM deliveries_to_create) - cbc.total,
               'quota_suppressed', (SELECT count(*) FROM eligible_deliveries) - (SELECT count(*) FROM deliveries_to_create),
               'events_outside_lookback', (SELECT count(*) FROM alert_events ae
                                            WHERE ae.fanout_completed_at IS NULL
                                              AND ae.created_at < now() - $1),
               'done', $4::bigint IS NULL
                       AND NOT EXISTS (SELECT 1 FROM alert_events ae
                                        WHERE ae.fanout_completed_at IS NULL
                                          AND ae.created_at >= now() - $1
                                          AND ae.id <> ALL ($2)))
      FROM created_by_channel cbc
    $fanout$;
BEGIN
    IF max_events IS NOT NULL AND max_events < 1 THEN
        RAISE EXCEPTION 'alerts_phase_b: max_events must be at least 1 or NULL, got %', max_events
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rows IS NOT NULL AND max_rows < 1 THEN
        RAISE EXCEPTION 'alerts_phase_b: max_rows must be at least 1 or NULL, got %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_b')) THEN
        RETURN alerts_lock_skipped('b');
    END IF;

    cfg := alerts_settings();
    row_budget := coalesce(max_rows, cfg.fanout_chunk_rows);

    -- Fresh statistics where its owner may refresh them; the fanout is planned without nested
    -- loops all the same (SET enable_nestloop = off above), which only a trusted estimate
    -- justifies and a range of users rarely gets: the range's few hundred users were estimated at
    -- one row and matched by a nested loop, 50,000 x 500 comparisons, 1.8 s a step instead of 0.65 s
    -- (bench, 100 events x 10,000 users); a bulk load left unanalysed took 58 s instead of 1.3 s.
    -- Before the group is chosen: an event Phase A commits while ANALYZE waits for a lock joins
    -- this step.
    PERFORM alerts_analyze_if_stale();

    -- The group: the pending events whose fanout stands where the oldest one's does, oldest first.
    SELECT ae.fanout_user_cursor INTO group_cursor
      FROM alert_events ae
     WHERE ae.fanout_completed_at IS NULL AND alerts_rule_within_lookback(ae.created_at, cfg.fanout_lookback)
     ORDER BY ae.created_at, ae.id
     LIMIT 1;
    SELECT coalesce(array_agg(g.id ORDER BY g.created_at, g.id), '{}') INTO group_event_ids
      FROM (SELECT ae.id, ae.created_at
              FROM alert_events ae
             WHERE ae.fanout_completed_at IS NULL AND alerts_rule_within_lookback(ae.created_at, cfg.fanout_lookback)
               AND ae.fanout_user_cursor IS NOT DISTINCT FROM group_cursor
             ORDER BY ae.created_at, ae.id
             LIMIT least(coalesce(max_events, row_budget), row_budget)
               FOR UPDATE) g;

    -- The range: the next users_per_range users by id after the group's cursor; NULL end when
    -- fewer are left, which makes this the group's last range.
    IF cardinality(group_event_ids) > 0 THEN
        users_per_range := greatest(row_budget / cardinality(group_event_ids), 1);
        SELECT u.id INTO range_end
          FROM users u
         WHERE group_cursor IS NULL OR u.id > group_cursor
         ORDER BY u.id
        OFFSET users_per_range - 1
         LIMIT 1;
    END IF;

    -- Plain INSERT first: the events are un-fanned for this range and locked, so normally none of
    -- their deliveries exists, and ON CONFLICT's speculative insertion costs ~7 us a row (+35% on
    -- 1,000,000 rows). If some exist (fanout_completed_at reset by hand), the unique key
    -- stops the statement; it is rolled back and run again skipping them. Static forms were
    -- measured against this (bench scale small, 100,000 deliveries, 0.90 s here): the same
    -- statement as static PL/pgSQL took 1.43 s even as a plain INSERT (EXECUTE plans it with this
    -- run's values as constants, the range's bounds among them, so users are read by one index
    -- range), 1.50 s with ON CONFLICT always; both miss the target of 1.5x a bare INSERT, and two
    -- static copies would repeat 120 lines. So the statement is kept once, as text, and the
    -- fallback adds its clause at the one marked place.
    BEGIN
        EXECUTE fanout_sql INTO counts USING cfg.fanout_lookback, group_event_ids, group_cursor, range_end;
    EXCEPTION WHEN unique_violation THEN
        EXECUTE replace(fanout_sql, '/* on conflict */', 'ON CONFLICT (alert_event_id, user_id, channel, delivery_kind) DO NOTHING')
           INTO counts USING cfg.fanout_lookback, group_event_ids, group_cursor, range_end;
    END;

    RETURN counts;
END;
$$;
COMMENT ON FUNCTION alerts_phase_b(integer, integer) IS
    'Phase B, one bounded step: fans the oldest group of un-fanned alert events out to the next range of users (at most max_rows event-user pairs; NULL: alerts_config.fanout_chunk_rows), one delivery per matching user, channel and kind, and moves the events on (fanout_completed_at with the last range) in the same transaction. Returns jsonb counts with "done": true once nothing is left, or the skip object when another session runs Phase B. Call it until done. Example: SELECT alerts_phase_b(NULL, 10000);';

CREATE OR REPLACE FUNCTION alerts_phase_b(max_events integer)
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees and lock: those of alerts_phase_b(integer, integer), which does the work, with the
-- row budget of alerts_config.fanout_chunk_rows.
    SELECT alerts_phase_b(max_events, NULL::integer)
$$;
COMMENT ON FUNCTION alerts_phase_b(integer) IS
    'Phase B, one bounded step over at most max_events of the oldest un-fanned events (NULL: as many as alerts_config.fanout_chunk_rows allows); see alerts_phase_b(integer, integer). Call it until it returns "done": true. Example: SELECT alerts_phase_b(2);';

CREATE OR REPLACE FUNCTION alerts_phase_b()
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees and lock: those of alerts_phase_b(integer, integer), which does the work, with the
-- row budget of alerts_config.fanout_chunk_rows.
    SELECT alerts_phase_b(NULL::integer, NULL::integer)
$$;
COMMENT ON FUNCTION alerts_phase_b() IS
    'Phase B, one bounded step: fans un-fanned alert events out to the next range of users (alerts_config.fanout_chunk_rows event-user pairs at most) and sets fanout_completed_at with an event''s last range. Returns jsonb counts with "done": true once nothing is left, or the skip object when another session runs Phase B. Call it until done (runner.py --phase b does). Example: SELECT alerts_phase_b();';
