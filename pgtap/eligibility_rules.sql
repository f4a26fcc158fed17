-- The eligibility rules Phase B and alerts_explain() share: each rule's truth table, that every one
-- stays inlinable (plain SQL, no SET clause, not SECURITY DEFINER) so Phase B's plan is unchanged,
-- and that alerts_explain() is read-only, callable by alerts_readonly and not by PUBLIC.
BEGIN;
SELECT plan(22);

SELECT is(alerts_rule_user_plan(NULL), 'free', 'no user_plans row: plan free');
SELECT is(alerts_rule_user_plan('pro'), 'pro', 'the user''s plan');
SELECT ok(alerts_rule_plan_allows(ARRAY['HIGH_IMPACT_EVENT'], 'HIGH_IMPACT_EVENT'), 'a listed type is allowed');
SELECT ok(NOT coalesce(alerts_rule_plan_allows(NULL, 'HIGH_IMPACT_EVENT'), false), 'no plan_settings row allows nothing');
SELECT ok(alerts_rule_user_reachable(NULL) AND alerts_rule_user_reachable(true), 'unknown or verified email: reachable');
SELECT ok(NOT alerts_rule_user_reachable(false), 'email_verified false: nothing on any channel');
SELECT ok(alerts_rule_region('global', 'Asia'), 'global covers every region');
SELECT ok(alerts_rule_region('Asia', 'Asia') AND NOT alerts_rule_region('Europe', 'Asia'), 'a region covers itself only');
SELECT ok(alerts_rule_asset(NULL, ARRAY['oil']) AND alerts_rule_asset('gas', '{}'), 'no asset, or an event without assets');
SELECT ok(alerts_rule_asset('oil', ARRAY['oil', 'gas']) AND NOT alerts_rule_asset('fx', ARRAY['oil']), 'an asset among the event''s');
SELECT ok(alerts_rule_threshold(70, 'REGIONAL_RISK_SPIKE', 70, false), 'a score at the threshold passes');
SELECT ok(NOT alerts_rule_threshold(71, 'ASSET_RISK_SPIKE', 70, false), 'a score below the threshold does not');
SELECT ok(alerts_rule_threshold(99, 'REGIONAL_RISK_SPIKE', 20, true), 'a spike that fired on its rise passes');
SELECT ok(alerts_rule_threshold(99, 'HIGH_IMPACT_EVENT', NULL, NULL), 'high-impact events ignore thresholds');
SELECT ok(alerts_rule_threshold(99, 'REGIONAL_RISK_SPIKE', NULL, NULL), 'a spike without a stored score passes');
SELECT ok(alerts_rule_within_lookback(now() - interval '1 day', interval '7 days')
          AND NOT alerts_rule_within_lookback(now() - interval '8 days', interval '7 days'), 'the lookback window');
SELECT ok(alerts_rule_counts_toward_cap('sent', now(), now())
          AND NOT alerts_rule_counts_toward_cap('skipped', now(), now())
          AND NOT alerts_rule_counts_toward_cap('sent', now() - interval '2 days', now()), 'what counts toward a daily cap');

DELETE FROM plan_settings WHERE plan_code = 'pgtap_rules';
INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config)
VALUES ('pgtap_rules', '{HIGH_IMPACT_EVENT}', 5,
        '{"email": {"max_per_day": 2}, "telegram": {"enabled": "yes"}, "sms": {"enabled": true, "digest": true}}');
SELECT results_eq(
    $$SELECT channel, enabled, max_per_day, digest_by_default FROM alerts_plan_channels()
       WHERE plan_code = 'pgtap_rules' ORDER BY channel$$,
    $$VALUES ('email', true, 2, false), ('sms', true, NULL::integer, true), ('telegram', true, NULL::integer, false)$$,
    'delivery_config per channel; a malformed value counts as missing');

SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND (p.proname LIKE 'alerts\_rule\_%' OR p.proname IN ('alerts_plan_channels', 'alerts_user_destination'))
         AND (p.prosecdef OR p.proconfig IS NOT NULL
              OR p.prolang <> (SELECT l.oid FROM pg_language l WHERE l.lanname = 'sql'))$$,
    'every shared rule is inlinable');
SELECT is(provolatile, 's', 'alerts_explain() is STABLE: it changes nothing')
  FROM pg_proc WHERE oid = 'alerts_explain(bigint, bigint)'::regprocedure;
SELECT ok(has_function_privilege('alerts_readonly', 'alerts_explain(bigint, bigint)', 'EXECUTE'),
          'alerts_readonly may call alerts_explain()');
SELECT ok(NOT has_function_privilege('public', 'alerts_explain(bigint, bigint)', 'EXECUTE'),
          'PUBLIC may not');

SELECT * FROM finish();
ROLLBACK;
