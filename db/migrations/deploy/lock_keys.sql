-- Deploy alerts_v2:lock_keys
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/lock_keys.sql
COMMIT;
