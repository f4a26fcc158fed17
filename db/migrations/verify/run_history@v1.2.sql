-- Verify alerts_v2:run_history (reworked after v1.0: alerts_prune() deletes only the engine's own deliveries)
SELECT id, phase, status, started_at, finished_at, counts, error FROM alerts_runs WHERE false;
SELECT alerts_status();
SELECT 'alerts_run_started(text)'::regprocedure, 'alerts_run_finished(bigint, text, jsonb, text)'::regprocedure,
       'alerts_prune(interval, integer)'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_prune(interval, integer)'::regprocedure AND prosrc LIKE '%delivery_kind IN (''instant'', ''digest'')%';
