-- alerts_explain(user_id, alert_event_id): whether Phase B gives (or gave) the user a delivery of
-- the alert event, every rule that decided it in words a support person can repeat, and the
-- deliveries made. It applies Phase B's own rules, the alerts_rule_* functions and
-- alerts_plan_channels() of db/functions/eligibility_rules.sql, to one (user, event) pair:
--
--   eligible  the plan allows the alert type, the user is not marked unverified, an enabled
--             preference matches the type, region, asset and threshold, at least one channel is
--             enabled by the plan, not unsubscribed, has a destination and is within its daily cap,
--             and the event is fanned out or within the fanout lookback window. A suppressed
--             destination is said, but does not count: Phase B makes the delivery and Phase C skips it.
--
-- The daily cap counts the user's other deliveries of the channel (not this event's, not skipped)
-- on the UTC day the event's delivery was created, else the day the event was fanned out, else
-- today: so after Phase B ran, "eligible" is exactly "Phase B made a delivery" (tests/
-- test_explain.py checks it on generated populations). The rules are read as they are now: when
-- they changed after the fanout, a reason says that the deliveries and the rules disagree.
CREATE OR REPLACE FUNCTION alerts_explain(user_id bigint, alert_event_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
-- Guarantees: changes nothing; "eligible" is computed with the same rule functions as
-- alerts_phase_b(); destinations (addresses, chat ids, numbers) are never shown, only whether
-- they are present. Lock: none (plain reads).
DECLARE
    uid constant bigint := user_id;
    eid constant bigint := alert_event_id;
    cfg alerts_config;
    ev record;
    usr record;
    user_plan text;
    plan_row record;
    plan_found boolean;
    prefs record;
    channels record;
    deliveries jsonb;
    reasons text[] := '{}';
    plan_ok boolean;
    reachable boolean;
    pref_ok boolean;
    lookback_ok boolean;
    eligible boolean;
    spike boolean;
BEGIN
    cfg := alerts_settings();
    SELECT ae.id, ae.alert_type, ae.scope_region, ae.scope_assets, ae.risk_score, ae.fired_on_rise,
           ae.created_at, ae.fanout_completed_at
      INTO ev FROM alert_events ae WHERE ae.id = eid;
    SELECT u.id, u.email_verified, u.email, u.telegram_chat_id, u.phone_number, up.plan
      INTO usr FROM users u LEFT JOIN user_plans up ON up.user_id = u.id WHERE u.id = uid;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'channel', d.channel, 'kind', d.delivery_kind, 'status', d.status, 'attempts', d.attempts,
               'last_error', d.last_error, 'sent_at', d.sent_at, 'next_retry_at', d.next_retry_at)
               ORDER BY d.channel, d.delivery_kind), '[]')
      INTO deliveries
      FROM user_alert_deliveries d WHERE d.alert_event_id = eid AND d.user_id = uid;
    IF ev.id IS NULL OR usr.id IS NULL THEN
        RETURN jsonb_build_object(
            'eligible', false,
            'reasons', to_jsonb(array_remove(ARRAY[
                CASE WHEN ev.id IS NULL THEN format('There is no alert event %s.', eid) END,
                CASE WHEN usr.id IS NULL THEN format('There is no user %s.', uid) END], NULL)),
            'deliveries', deliveries);
    END IF;
    spike := ev.alert_type IN ('REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE');

    -- 1. The plan allows the alert type.
    user_plan := alerts_rule_user_plan(usr.plan);
    SELECT ps.allowed_alert_types INTO plan_row FROM plan_settings ps WHERE ps.plan_code = user_plan;
    plan_found := FOUND;
    plan_ok := coalesce(alerts_rule_plan_allows(plan_row.allowed_alert_types, ev.alert_type), false);
    reasons := reasons || CASE
        WHEN NOT plan_found THEN format('The user''s plan %L has no plan_settings row, so it allows no alerts.', user_plan)
        WHEN plan_ok THEN format('The user''s plan %L allows %s alerts.', user_plan, ev.alert_type)
        ELSE format('The user''s plan %L does not allow %s alerts (it allows: %s).', user_plan, ev.alert_type,
                    coalesce(nullif(array_to_string(plan_row.allowed_alert_types, ', '), ''), 'none'))
    END;

    -- 2. The user is not marked unverified.
    reachable := alerts_rule_user_reachable(usr.email_verified);
    reasons := reasons || CASE
        WHEN NOT reachable THEN 'The user''s email is marked unverified (email_verified = false), so the user gets no alerts on any channel.'
        WHEN usr.email_verified THEN 'The user''s email is verified.'
        ELSE 'The user''s email verification is unknown, which does not block alerts.'
    END;

    -- 3. An enabled preference matches the type, the region, the asset and the threshold.
    SELECT count(*) AS of_type,
           count(*) FILTER (WHERE p.enabled IS TRUE) AS enabled,
           count(*) FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)) AS in_region,
           count(*) FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)
                              AND alerts_rule_asset(p.asset, ev.scope_assets)) AS in_region_asset,
           count(*) FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)
                              AND alerts_rule_asset(p.asset, ev.scope_assets)
                              AND alerts_rule_threshold(p.threshold, ev.alert_type, ev.risk_score, ev.fired_on_rise))
               AS matching,
           string_agg(DISTINCT format('%L', p.region), ', ') FILTER (WHERE p.enabled IS TRUE) AS enabled_regions,
           string_agg(DISTINCT format('%L', p.region), ', ') FILTER (WHERE p.enabled IS NOT TRUE) AS disabled_regions,
           string_agg(DISTINCT format('%L', p.region), ', ')
               FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)) AS matching_regions,
           string_agg(DISTINCT format('%L', p.asset), ', ')
               FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)) AS region_assets,
           min(p.threshold) FILTER (WHERE p.enabled IS TRUE AND alerts_rule_region(p.region, ev.scope_region)
                                      AND alerts_rule_asset(p.asset, ev.scope_assets)) AS lowest_threshold,
           bool_or(p.threshold IS NOT NULL) FILTER (WHERE p.enabled IS TRUE
                                      AND alerts_rule_region(p.region, ev.scope_region)
                                      AND alerts_rule_asset(p.asset, ev.scope_assets)
                                      AND alerts_rule_threshold(p.threshold, ev.alert_type, ev.risk_score,
                                                                ev.fired_on_rise)) AS threshold_used
      INTO prefs
      FROM user_alert_prefs p
     WHERE p.user_id = uid AND p.alert_type = ev.alert_type;
    pref_ok := prefs.matching > 0;
    reasons := reasons || CASE
        WHEN prefs.of_type = 0 THEN format('The user has no preference for %s alerts.', ev.alert_type)
        WHEN prefs.enabled = 0 THEN format('The user''s preferences for %s alerts are disabled (regions %s).',
                                           ev.alert_type, prefs.disabled_regions)
        WHEN prefs.in_region = 0 THEN format(
            'No enabled preference for %s alerts covers the event''s region %L: the user''s preferences cover %s.',
            ev.alert_type, ev.scope_region, prefs.enabled_regions)
        ELSE format('An enabled preference for %s alerts covers the event''s region %L (preference region %s).',
                    ev.alert_type, ev.scope_region, prefs.matching_regions)
    END;
    IF prefs.in_region > 0 AND prefs.in_region_asset = 0 THEN
        reasons := reasons || format('No such preference covers the event''s assets (%s): the preferences name %s.',
                                     array_to_string(ev.scope_assets, ', '), prefs.region_assets);
    ELSIF prefs.in_region_asset > 0 AND cardinality(ev.scope_assets) > 0 THEN
        reasons := reasons || format('A preference covers the event''s assets (%s).', array_to_string(ev.scope_assets, ', '));
    END IF;
    IF prefs.in_region_asset > 0 THEN
        reasons := reasons || CASE
            WHEN NOT spike THEN format('Thresholds do not apply to %s alerts.', ev.alert_type)
            WHEN prefs.matching = 0 THEN format(
                'The spike''s risk score %s is below the threshold of every matching preference (the lowest is %s).',
                ev.risk_score, prefs.lowest_threshold)
            WHEN ev.fired_on_rise AND prefs.threshold_used THEN
                'The spike fired on its rise, which passes any threshold.'
            WHEN ev.risk_score IS NULL AND prefs.threshold_used THEN
                'The spike has no stored risk score (it predates them), which passes any threshold.'
            WHEN prefs.threshold_used THEN format('The spike''s risk score %s meets the preference''s threshold %s.',
                                                  ev.risk_score, prefs.lowest_threshold)
            ELSE 'The matching preference sets no threshold.'
        END;
    END IF;

    -- 4. Per channel: enabled by the plan, not unsubscribed, a destination present, the daily cap not reached.
    --    Preferences choose no channel (only instant or digest): every channel the plan enables is used.
    WITH per_channel AS (
        SELECT pc.channel, pc.enabled, pc.max_per_day,
               alerts_user_destination(u, pc.channel) IS NOT NULL AS has_destination,
               -- Phase B's opt-out rule: the user unsubscribed from the channel (alerts_unsubscribe())
               (SELECT format('the user unsubscribed from it (since %s UTC)', to_char(o.since, 'YYYY-MM-DD HH24:MI'))
                  FROM alerts_channel_optouts o WHERE o.user_id = uid AND o.channel = pc.channel) AS opted_out,
               -- SUPPRESSED DESTINATION: a suppressed destination (alerts_suppressions) does not stop
               -- Phase B: the delivery is made and skipped when it is sent. Said here, not eligibility;
               -- neither the destination nor the provider's answer is shown (alerts_readonly may call this).
               (SELECT format('the %s destination is suppressed (since %s UTC): its messages are skipped when sent',
                              pc.channel, to_char(s.since, 'YYYY-MM-DD HH24:MI'))
                  FROM alerts_suppressions s
                 WHERE s.channel = pc.channel
                   AND s.destination = alerts_destination_key(pc.channel, alerts_user_destination(u, pc.channel)))
                   AS suppressed_destination,
               coalesce((SELECT min(d.created_at) FROM user_alert_deliveries d
                          WHERE d.alert_event_id = eid AND d.user_id = uid AND d.channel = pc.channel),
                        ev.fanout_completed_at, now()) AS cap_day
          FROM alerts_plan_channels() pc
          CROSS JOIN users u
         WHERE u.id = uid AND pc.plan_code = user_plan
    ),
    counted AS (
        SELECT c.*,
               (SELECT count(*) FROM user_alert_deliveries d
                 WHERE d.user_id = uid AND d.channel = c.channel AND d.alert_event_id <> eid
                   AND alerts_rule_counts_toward_cap(d.status, d.created_at, c.cap_day)
                   AND d.created_at < date_trunc('day', c.cap_day) + interval '1 day') AS used
          FROM per_channel c
    ),
    judged AS (
        SELECT c.*, c.enabled AND c.opted_out IS NULL AND c.has_destination
                    AND (c.max_per_day IS NULL OR c.used < c.max_per_day) AS ok
          FROM counted c
    )
    SELECT coalesce(bool_or(j.ok), false) AS any_ok,
           coalesce(array_agg(CASE
               WHEN NOT j.enabled THEN format('Channel %s: the plan %L does not enable it.', j.channel, user_plan)
               WHEN j.opted_out IS NOT NULL THEN format('Channel %s: %s.', j.channel, j.opted_out)
               WHEN NOT j.has_destination THEN format('Channel %s: enabled by the plan, but the user has no %s.',
                   j.channel, CASE j.channel WHEN 'email' THEN 'email address' WHEN 'telegram' THEN 'Telegram chat id'
                                             ELSE 'phone number' END)
               WHEN j.max_per_day IS NOT NULL AND j.used >= j.max_per_day THEN format(
                   'Channel %s: the daily cap of %s alerts was reached (%s other %s alerts on %s, UTC).',
                   j.channel, j.max_per_day, j.used, j.channel, to_char(j.cap_day, 'YYYY-MM-DD'))
               ELSE format('Channel %s: enabled by the plan, the user has a destination, %s.', j.channel,
                           CASE WHEN j.max_per_day IS NULL THEN 'no daily cap'
                                ELSE format('daily cap %s with %s other alerts on %s (UTC)', j.max_per_day, j.used,
                                            to_char(j.cap_day, 'YYYY-MM-DD')) END)
           END || coalesce(' But ' || j.suppressed_destination || '.', '') ORDER BY j.channel), '{}') AS reasons
      INTO channels
      FROM judged j;
    reasons := reasons || channels.reasons;
    IF cardinality(channels.reasons) = 0 THEN
        reasons := reasons || 'No channel: the plan has no settings.'::text;
    END IF;

    -- 5. The fanout lookback window.
    lookback_ok := ev.fanout_completed_at IS NOT NULL OR alerts_rule_within_lookback(ev.created_at, cfg.fanout_lookback);
    reasons := reasons || CASE
        WHEN ev.fanout_completed_at IS NOT NULL THEN format('Phase B fanned the event out at %s.', ev.fanout_completed_at)
        WHEN lookback_ok THEN format('The event (created %s) is within the fanout lookback window (%s) and waits for Phase B.',
                                     ev.created_at, cfg.fanout_lookback)
        ELSE format('The event was created at %s, outside the fanout lookback window (%s): Phase B will never fan it out.',
                    ev.created_at, cfg.fanout_lookback)
    END;

    eligible := plan_ok AND reachable AND pref_ok AND channels.any_ok AND lookback_ok;
    IF eligible AND ev.fanout_completed_at IS NOT NULL AND deliveries = '[]'::jsonb THEN
        reasons := reasons || 'The rules allow it now, but the fanout made no delivery: the plan, preferences or destinations changed since (Phase B does not revisit a fanned-out event).'::text;
    ELSIF NOT eligible AND deliveries <> '[]'::jsonb THEN
        reasons := reasons || 'A delivery exists although the rules do not allow it now: the plan, preferences or destinations changed after the fanout.'::text;
    END IF;
    RETURN jsonb_build_object('eligible', eligible, 'reasons', to_jsonb(reasons), 'deliveries', deliveries);
END;
$$;
COMMENT ON FUNCTION alerts_explain(bigint, bigint) IS
    'Whether the user gets a delivery of the alert event, with every rule that decided it (plan, verification, preference region, asset and threshold, each channel''s plan setting, destination and daily cap, the lookback window) in plain words, and the deliveries made. Read-only; uses Phase B''s own rule functions. Example: SELECT jsonb_pretty(alerts_explain(42, 1001));';
