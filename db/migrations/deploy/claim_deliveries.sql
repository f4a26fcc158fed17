-- Deploy alerts_v2:claim_deliveries
BEGIN;
\ir ../../functions/user_destination.sql
\ir ../../functions/claim_deliveries.sql
COMMIT;
