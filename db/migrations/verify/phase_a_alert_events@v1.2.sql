-- Verify alerts_v2:phase_a_alert_events (reworked after v1.1: it records what a spike fired on)
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_a()'::regprocedure AND prosrc LIKE '%fired_on_rise%';
