-- Deploy alerts_v2:lease_seconds
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/lease_seconds.sql
COMMIT;
