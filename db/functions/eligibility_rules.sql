-- Who gets a delivery (CONTRACT.md, "Who gets a delivery"): each rule Phase B applies, once, as a
-- small SQL function that both alerts_phase_b() (db/functions/phase_b_fanout.sql) and
-- alerts_explain() (db/functions/alerts_explain.sql) call, so the explanation a support person
-- reads can never drift from what the fanout does.
--
-- Every one is inlinable: LANGUAGE sql, one SELECT, no SECURITY DEFINER, no SET clause, not
-- STRICT. The planner replaces a call by its expression before planning, so Phase B's statement
-- is planned exactly as if the expression were written in place (its hash keys, index ranges and
-- estimates are unchanged). Callers are the engine's own SECURITY DEFINER functions, whose pinned
-- search_path the inlined expression is parsed under; the bodies name pg_catalog's functions
-- explicitly all the same. EXECUTE is revoked from PUBLIC like every engine function (a function
-- the caller may not execute is not inlined: only alerts_owner, which owns them, calls them).

CREATE OR REPLACE FUNCTION alerts_rule_user_plan(plan text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: a user without a user_plans row is on plan 'free'. Lock: none.
    SELECT coalesce(plan, 'free')
$$;
COMMENT ON FUNCTION alerts_rule_user_plan(text) IS
    'Eligibility rule: the plan code of a user (user_plans.plan; no row = free). Example: SELECT alerts_rule_user_plan(NULL);';

CREATE OR REPLACE FUNCTION alerts_rule_plan_allows(allowed_alert_types text[], alert_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: true only when the plan's allowed_alert_types lists the alert type (a plan with no
-- plan_settings row allows nothing: NULL is not true). Lock: none.
    SELECT alert_type = ANY (allowed_alert_types)
$$;
COMMENT ON FUNCTION alerts_rule_plan_allows(text[], text) IS
    'Eligibility rule: the plan allows the alert type. Example: SELECT alerts_rule_plan_allows(ARRAY[''HIGH_IMPACT_EVENT''], ''HIGH_IMPACT_EVENT'');';

CREATE OR REPLACE FUNCTION alerts_rule_user_reachable(email_verified boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: a user whose email_verified is false gets nothing on any channel; unknown (NULL)
-- does not block. Lock: none.
    SELECT email_verified IS DISTINCT FROM false
$$;
COMMENT ON FUNCTION alerts_rule_user_reachable(boolean) IS
    'Eligibility rule: users.email_verified is not false. Example: SELECT alerts_rule_user_reachable(NULL);';

CREATE OR REPLACE FUNCTION alerts_rule_region(pref_region text, event_region text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: a preference for region 'global' covers every region, any other only its own.
-- Lock: none.
    SELECT pref_region = 'global' OR pref_region = event_region
$$;
COMMENT ON FUNCTION alerts_rule_region(text, text) IS
    'Eligibility rule: the preference''s region covers the event''s region (''global'' covers all). Example: SELECT alerts_rule_region(''global'', ''Europe'');';

CREATE OR REPLACE FUNCTION alerts_rule_asset(pref_asset text, event_assets text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: a preference without an asset covers every event; one with an asset covers an event
-- without assets or one that names it. Lock: none.
    SELECT pref_asset IS NULL OR pg_catalog.cardinality(event_assets) = 0 OR pref_asset = ANY (event_assets)
$$;
COMMENT ON FUNCTION alerts_rule_asset(text, text[]) IS
    'Eligibility rule: the preference''s asset (NULL: any) is among the event''s assets. Example: SELECT alerts_rule_asset(''gas'', ARRAY[''gas'']);';

CREATE OR REPLACE FUNCTION alerts_rule_threshold(pref_threshold anycompatible, alert_type text,
                                                 risk_score anycompatible, fired_on_rise boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
-- Guarantees: the threshold applies to spikes only; a spike passes when its risk score is at
-- least the threshold, when it fired on its rise, or when it has no stored score (stored before
-- the score was kept: it fired under the alert's own rule). The score and the threshold are
-- compared in their common type, as the operator would: numeric against an integer threshold,
-- double precision against the original application's double precision one. Lock: none.
    SELECT pref_threshold IS NULL
        OR alert_type NOT IN ('REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE')
        OR risk_score IS NULL
        OR risk_score >= pref_threshold
        OR fired_on_rise
$$;
COMMENT ON FUNCTION alerts_rule_threshold(anycompatible, text, anycompatible, boolean) IS
    'Eligibility rule: a spike''s risk score meets the preference''s threshold (or it fired on its rise); other alert types ignore thresholds. Example: SELECT alerts_rule_threshold(70, ''REGIONAL_RISK_SPIKE'', 82, false);';

CREATE OR REPLACE FUNCTION alerts_rule_within_lookback(created_at timestamptz, lookback interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
-- Guarantees: Phase B fans out only events created within alerts_config.fanout_lookback of now.
-- Lock: none.
    SELECT created_at >= pg_catalog.now() - lookback
$$;
COMMENT ON FUNCTION alerts_rule_within_lookback(timestamptz, interval) IS
    'Eligibility rule: the event is recent enough for Phase B to fan it out. Example: SELECT alerts_rule_within_lookback(now(), interval ''7 days'');';

CREATE OR REPLACE FUNCTION alerts_rule_counts_toward_cap(status text, created_at timestamptz, on_day timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
-- Guarantees: a delivery counts toward its user's daily cap of its channel from the start of the
-- UTC day of on_day (the caller runs with timezone UTC), unless it was skipped. Lock: none.
    SELECT created_at >= pg_catalog.date_trunc('day', on_day) AND status <> 'skipped'
$$;
COMMENT ON FUNCTION alerts_rule_counts_toward_cap(text, timestamptz, timestamptz) IS
    'Eligibility rule: a delivery of that day (UTC, from its start) that was not skipped counts toward the daily cap. Example: SELECT alerts_rule_counts_toward_cap(''sent'', now(), now());';

CREATE OR REPLACE FUNCTION alerts_plan_channels()
RETURNS TABLE (plan_code text, allowed_alert_types text[], channel text, enabled boolean, max_per_day integer,
               digest_by_default boolean)
LANGUAGE sql STABLE
AS $$
-- Guarantees: one row per (plan_settings row, channel) with what delivery_config says, a
-- malformed value (wrong JSON type) counting as missing: enabled (missing: email and telegram
-- yes, sms no), the daily cap (missing: for email the plan's max_email_alerts_per_day; NULL: no
-- cap; clamped to 0..2^31-1) and whether the channel's deliveries are digests by default.
-- Lock: none (reads plan_settings).
    SELECT ps.plan_code::text, ps.allowed_alert_types, ch.channel,
           CASE
               WHEN pg_catalog.jsonb_typeof(ps.delivery_config -> ch.channel -> 'enabled') = 'boolean'
                   THEN (ps.delivery_config -> ch.channel -> 'enabled') = 'true'::jsonb
               ELSE ch.enabled_by_default
           END,
           CASE
               WHEN pg_catalog.jsonb_typeof(ps.delivery_config -> ch.channel -> 'max_per_day') = 'number'
                   THEN least(greatest((ps.delivery_config -> ch.channel ->> 'max_per_day')::numeric, 0), 2147483647)::integer
               WHEN ch.channel = 'email' AND ps.max_email_alerts_per_day IS NOT NULL
                   THEN greatest(ps.max_email_alerts_per_day, 0)
           END,
           coalesce(ps.delivery_config -> ch.channel -> 'digest' = 'true'::jsonb, false)
      FROM public.plan_settings ps
     CROSS JOIN (VALUES ('email', true), ('telegram', true), ('sms', false)) AS ch (channel, enabled_by_default)
$$;
COMMENT ON FUNCTION alerts_plan_channels() IS
    'Eligibility rule: every plan''s channels, whether each is enabled, its daily cap and whether it sends digests by default, read from plan_settings.delivery_config. Example: SELECT * FROM alerts_plan_channels() WHERE plan_code = ''pro'';';
