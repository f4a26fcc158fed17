-- Verify alerts_v2:phase_b_fanout (reworked after v1.0: its own work_mem marks this version)
SELECT 'alerts_analyze_if_stale()'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_b()'::regprocedure AND 'work_mem=64MB' = ANY (proconfig);
