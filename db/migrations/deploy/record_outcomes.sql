-- Deploy alerts_v2:record_outcomes
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/record_outcomes.sql
COMMIT;
