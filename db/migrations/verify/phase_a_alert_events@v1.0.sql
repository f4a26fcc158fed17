-- Verify alerts_v2:phase_a_alert_events
SELECT 'alerts_phase_a()'::regprocedure;
