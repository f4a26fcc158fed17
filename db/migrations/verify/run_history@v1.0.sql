-- Verify alerts_v2:run_history@v1.0
SELECT id, phase, status, started_at, finished_at, counts, error FROM alerts_runs WHERE false;
SELECT alerts_status();
SELECT 'alerts_run_started(text)'::regprocedure, 'alerts_run_finished(bigint, text, jsonb, text)'::regprocedure,
       'alerts_prune(interval, integer)'::regprocedure;
