-- Verify alerts_v2:bound_heartbeats: the bound functions exist and the runner role has only those.
SELECT secret_hash FROM alerts_watchers WHERE false;
SELECT secret_hash FROM alerts_runs WHERE false;
SELECT 1 / has_function_privilege('alerts_runner', 'alerts_watcher_heartbeat(text, text, jsonb, text)', 'EXECUTE')::integer;
SELECT 1 / (NOT has_function_privilege('alerts_runner', 'alerts_watcher_beat(text, jsonb, text)', 'EXECUTE'))::integer;
SELECT 1 / has_function_privilege('alerts_runner', 'alerts_run_close(bigint, text, text, jsonb, text)', 'EXECUTE')::integer;
