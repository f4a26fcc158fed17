-- Verify alerts_v2:eligibility_rules
SELECT 'alerts_rule_user_plan(text)'::regprocedure, 'alerts_rule_plan_allows(text[], text)'::regprocedure,
       'alerts_rule_user_reachable(boolean)'::regprocedure, 'alerts_rule_region(text, text)'::regprocedure,
       'alerts_rule_asset(text, text[])'::regprocedure,
       'alerts_rule_threshold(anycompatible, text, anycompatible, boolean)'::regprocedure,
       'alerts_rule_within_lookback(timestamptz, interval)'::regprocedure,
       'alerts_rule_counts_toward_cap(text, timestamptz, timestamptz)'::regprocedure,
       'alerts_plan_channels()'::regprocedure;
-- inlinable: plain SQL, neither SECURITY DEFINER nor with a SET clause
SELECT 1 / (count(*) = 0)::integer FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND (p.proname LIKE 'alerts\_rule\_%' OR p.proname = 'alerts_plan_channels')
   AND (p.prosecdef OR p.proconfig IS NOT NULL OR p.prolang <> (SELECT l.oid FROM pg_language l WHERE l.lanname = 'sql'));
