-- Deploy alerts_v2:phase_b_fanout
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/alerts_analyze_if_stale.sql
\ir ../../functions/phase_b_fanout.sql
SELECT alerts_assign_owner();
COMMIT;
