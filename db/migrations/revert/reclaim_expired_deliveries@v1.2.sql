-- Revert alerts_v2:reclaim_expired_deliveries
BEGIN;
DROP FUNCTION IF EXISTS reclaim_expired_deliveries();
COMMIT;
