-- Revert alerts_v2:phase_b_fanout
BEGIN;
DROP FUNCTION IF EXISTS alerts_phase_b();
DROP FUNCTION IF EXISTS alerts_analyze_if_stale();
COMMIT;
