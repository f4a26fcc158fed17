-- Revert alerts_v2:retry_schedule
BEGIN;
DROP FUNCTION IF EXISTS alerts_retry_delay(integer);
COMMIT;
