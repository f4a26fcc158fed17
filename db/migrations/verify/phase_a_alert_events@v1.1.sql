-- Verify alerts_v2:phase_a_alert_events (reworked after v1.0: its own work_mem marks this version)
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_a()'::regprocedure AND 'work_mem=32MB' = ANY (proconfig);
