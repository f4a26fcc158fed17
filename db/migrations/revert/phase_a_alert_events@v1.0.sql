-- Revert alerts_v2:phase_a_alert_events
BEGIN;
DROP FUNCTION IF EXISTS alerts_phase_a();
COMMIT;
