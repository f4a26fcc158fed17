-- Revert alerts_v2:bound_heartbeats
BEGIN;
SET LOCAL lock_timeout = '5s';
GRANT EXECUTE ON FUNCTION alerts_watcher_started(text, text, integer), alerts_watcher_beat(text, jsonb, text),
    alerts_watcher_stopped(text), alerts_run_started(text), alerts_run_finished(bigint, text, jsonb, text)
    TO alerts_runner;
DROP FUNCTION IF EXISTS alerts_run_close(bigint, text, text, jsonb, text);
DROP FUNCTION IF EXISTS alerts_run_open(text);
DROP FUNCTION IF EXISTS alerts_watcher_stop(text, text);
DROP FUNCTION IF EXISTS alerts_watcher_heartbeat(text, text, jsonb, text);
DROP FUNCTION IF EXISTS alerts_watcher_register(text, text, integer);
DROP FUNCTION IF EXISTS alerts_new_secret();
DROP FUNCTION IF EXISTS alerts_secret_hash(text);
ALTER TABLE alerts_watchers DROP COLUMN IF EXISTS secret_hash;
ALTER TABLE alerts_runs DROP COLUMN IF EXISTS secret_hash;
COMMIT;
