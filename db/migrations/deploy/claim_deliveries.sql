-- Deploy alerts_v2:claim_deliveries
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/user_destination.sql
\ir ../../functions/claim_deliveries.sql
COMMIT;
