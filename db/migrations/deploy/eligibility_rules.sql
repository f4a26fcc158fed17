-- Deploy alerts_v2:eligibility_rules
-- Who gets a delivery, one rule per function: Phase B and alerts_explain() both call them.
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/eligibility_rules.sql
REVOKE ALL ON FUNCTION
    alerts_rule_user_plan(text), alerts_rule_plan_allows(text[], text), alerts_rule_user_reachable(boolean),
    alerts_rule_region(text, text), alerts_rule_asset(text, text[]),
    alerts_rule_threshold(anycompatible, text, anycompatible, boolean), alerts_rule_within_lookback(timestamptz, interval),
    alerts_rule_counts_toward_cap(text, timestamptz, timestamptz), alerts_plan_channels()
FROM PUBLIC;
SELECT alerts_assign_owner();
COMMIT;
