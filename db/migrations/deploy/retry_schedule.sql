-- Deploy alerts_v2:retry_schedule
BEGIN;
\ir ../../functions/retry_schedule.sql
COMMIT;
