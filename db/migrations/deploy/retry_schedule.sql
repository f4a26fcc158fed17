-- Deploy alerts_v2:retry_schedule
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/retry_schedule.sql
COMMIT;
