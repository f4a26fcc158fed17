-- Deploy alerts_v2:reclaim_expired_deliveries
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/reclaim_expired_deliveries.sql
SELECT alerts_assign_owner();
COMMIT;
