-- Deploy alerts_v2:phase_b_fanout (a user who unsubscribed from a channel gets no delivery on it; the eligibility rules are the shared alerts_rule_* functions)
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/alerts_analyze_if_stale.sql
\ir ../../functions/phase_b_fanout.sql
REVOKE ALL ON FUNCTION alerts_phase_b(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_b(integer, integer) TO alerts_runner;
REVOKE ALL ON FUNCTION alerts_phase_b(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_b(integer) TO alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
