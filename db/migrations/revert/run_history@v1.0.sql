-- Revert alerts_v2:run_history@v1.0
BEGIN;
DROP FUNCTION IF EXISTS alerts_prune(interval, integer);
DROP FUNCTION IF EXISTS alerts_status();
DROP FUNCTION IF EXISTS alerts_run_finished(bigint, text, jsonb, text);
DROP FUNCTION IF EXISTS alerts_run_started(text);
DROP TABLE IF EXISTS alerts_runs;
COMMIT;
