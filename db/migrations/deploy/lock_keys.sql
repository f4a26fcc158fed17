-- Deploy alerts_v2:lock_keys
BEGIN;
\ir ../../functions/lock_keys.sql
COMMIT;
