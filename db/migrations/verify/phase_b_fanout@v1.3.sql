-- Verify alerts_v2:phase_b_fanout (reworked after v1.2: one bounded range of users per call)
SELECT 'alerts_analyze_if_stale()'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_b(integer,integer)'::regprocedure AND prosrc LIKE '%fanout_user_cursor%';
SELECT 'alerts_phase_b(integer)'::regprocedure;
SELECT 'alerts_phase_b()'::regprocedure;
