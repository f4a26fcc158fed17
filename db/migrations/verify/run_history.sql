-- Verify alerts_v2:run_history (reworked after v1.2: alerts_prune() keeps min_retention, clamps its batch)
SELECT 'alerts_run_started(text)'::regprocedure, 'alerts_run_finished(bigint, text, jsonb, text)'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_prune(interval, integer)'::regprocedure AND prosrc LIKE '%min_retention%';
