-- Revert alerts_v2:send_pacing
BEGIN;
SET LOCAL lock_timeout = '5s';
DROP FUNCTION IF EXISTS alerts_reserve_send_slots(text, text[], double precision, double precision);
DROP TABLE IF EXISTS alerts_send_pacing_destinations;
DROP TABLE IF EXISTS alerts_send_pacing;
COMMIT;
