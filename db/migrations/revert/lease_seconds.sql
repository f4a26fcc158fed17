-- Revert alerts_v2:lease_seconds
BEGIN;
DROP FUNCTION IF EXISTS alerts_lease_seconds();
COMMIT;
