-- Deploy alerts_v2:reclaim_expired_deliveries
BEGIN;
\ir ../../functions/reclaim_expired_deliveries.sql
COMMIT;
