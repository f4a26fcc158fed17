-- Deploy alerts_v2:bound_heartbeats
-- Watcher heartbeats and run records bound to a secret returned when they are opened
-- (db/functions/bound_heartbeats.sql); the runner role keeps only the bound functions.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alerts_watchers ADD COLUMN IF NOT EXISTS secret_hash bytea;
ALTER TABLE alerts_runs ADD COLUMN IF NOT EXISTS secret_hash bytea;
COMMENT ON COLUMN alerts_watchers.secret_hash IS
    'sha256 of the secret alerts_watcher_register() returned: heartbeats and the stop must show it.';
COMMENT ON COLUMN alerts_runs.secret_hash IS
    'sha256 of the secret alerts_run_open() returned: closing the run must show it (NULL: opened unbound).';
\ir ../../functions/bound_heartbeats.sql
REVOKE ALL ON FUNCTION alerts_secret_hash(text), alerts_new_secret(),
    alerts_watcher_register(text, text, integer), alerts_watcher_heartbeat(text, text, jsonb, text),
    alerts_watcher_stop(text, text), alerts_run_open(text), alerts_run_close(bigint, text, text, jsonb, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_watcher_register(text, text, integer),
    alerts_watcher_heartbeat(text, text, jsonb, text), alerts_watcher_stop(text, text), alerts_run_open(text),
    alerts_run_close(bigint, text, text, jsonb, text) TO alerts_runner;
REVOKE EXECUTE ON FUNCTION alerts_watcher_started(text, text, integer), alerts_watcher_beat(text, jsonb, text),
    alerts_watcher_stopped(text), alerts_run_started(text), alerts_run_finished(bigint, text, jsonb, text)
    FROM alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
