-- Deploy alerts_v2:record_outcomes
BEGIN;
\ir ../../functions/record_outcomes.sql
COMMIT;
