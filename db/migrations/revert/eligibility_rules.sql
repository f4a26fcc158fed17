-- Revert alerts_v2:eligibility_rules
BEGIN;
SET LOCAL lock_timeout = '5s';
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_rule_user_plan(text), alerts_rule_plan_allows(text[], text),
    alerts_rule_user_reachable(boolean), alerts_rule_region(text, text), alerts_rule_asset(text, text[]),
    alerts_rule_threshold(anycompatible, text, anycompatible, boolean), alerts_rule_within_lookback(timestamptz, interval),
    alerts_rule_counts_toward_cap(text, timestamptz, timestamptz), alerts_plan_channels();
COMMIT;
