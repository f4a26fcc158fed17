-- Heartbeats and run records bound to whoever opened them. Opening one returns a secret (two
-- gen_random_uuid() values: 244 random bits); the row keeps only its sha256, and every later call
-- must show the secret. A runner login can no longer make a dead watcher look alive, stop another
-- watcher, or close another process's run. The unbound functions stay for the owner and DBAs; the
-- runner role may no longer execute them (db/migrations/deploy/bound_heartbeats.sql).

CREATE OR REPLACE FUNCTION alerts_secret_hash(secret text)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT sha256(convert_to(secret, 'UTF8'))
$$;
COMMENT ON FUNCTION alerts_secret_hash(text) IS
    'Internal: the sha256 a watcher or run row keeps of its secret. Example: SELECT alerts_secret_hash(''s'');';

CREATE OR REPLACE FUNCTION alerts_new_secret()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
$$;
COMMENT ON FUNCTION alerts_new_secret() IS
    'Internal: a new unguessable secret (two random UUIDs). Example: SELECT alerts_new_secret();';

CREATE OR REPLACE FUNCTION alerts_watcher_register(watcher text, watcher_host text, watcher_pid integer)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as alerts_watcher_started(), and the row is bound to the secret returned (a watcher
-- registering again under the name takes the row over; the old secret stops working).
-- Lock: row lock of the upsert.
DECLARE
    secret text := alerts_new_secret();
BEGIN
    PERFORM alerts_watcher_started(watcher, watcher_host, watcher_pid);
    UPDATE alerts_watchers w SET secret_hash = alerts_secret_hash(secret) WHERE w.name = watcher;
    RETURN secret;
END;
$$;
COMMENT ON FUNCTION alerts_watcher_register(text, text, integer) IS
    'Registers a watcher (runner.py --watch) as running and returns the secret its heartbeats must show. Example: SELECT alerts_watcher_register(''db1-watch'', ''db1'', 4242);';

CREATE OR REPLACE FUNCTION alerts_watcher_heartbeat(watcher text, secret text, pass_counts jsonb DEFAULT NULL,
                                                    pass_error text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as alerts_watcher_beat(), only with the secret of the watcher's registration;
-- returns false and changes nothing otherwise. Lock: row lock of the UPDATE.
    SELECT CASE WHEN EXISTS (SELECT 1 FROM alerts_watchers w
                              WHERE w.name = watcher AND w.secret_hash = alerts_secret_hash(secret))
                THEN alerts_watcher_beat(watcher, pass_counts, pass_error)
                ELSE false END
$$;
COMMENT ON FUNCTION alerts_watcher_heartbeat(text, text, jsonb, text) IS
    'Heartbeat of a running watcher, with the secret of its registration and the counts or error of its last pass. Example: SELECT alerts_watcher_heartbeat(''db1-watch'', ''<secret>'', ''{"c": {"sent": 3}}'');';

CREATE OR REPLACE FUNCTION alerts_watcher_stop(watcher text, secret text)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as alerts_watcher_stopped(), only with the secret of the watcher's registration.
-- Lock: row lock of the UPDATE.
    SELECT CASE WHEN EXISTS (SELECT 1 FROM alerts_watchers w
                              WHERE w.name = watcher AND w.secret_hash = alerts_secret_hash(secret))
                THEN alerts_watcher_stopped(watcher)
                ELSE false END
$$;
COMMENT ON FUNCTION alerts_watcher_stop(text, text) IS
    'Marks a watcher stopped after a graceful exit, with the secret of its registration. Example: SELECT alerts_watcher_stop(''db1-watch'', ''<secret>'');';

CREATE OR REPLACE FUNCTION alerts_run_open(phase text)
RETURNS TABLE (run_id bigint, secret text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: one new 'running' row, bound to the secret returned. Lock: none beyond the INSERT.
#variable_conflict use_column
DECLARE
    new_secret text := alerts_new_secret();
BEGIN
    RETURN QUERY
    INSERT INTO alerts_runs (phase, secret_hash) VALUES (phase, alerts_secret_hash(new_secret))
    RETURNING alerts_runs.id, new_secret;
END;
$$;
COMMENT ON FUNCTION alerts_run_open(text) IS
    'Opens a run-history row for a phase run; returns its id and the secret that closes it. Example: SELECT * FROM alerts_run_open(''c'');';

CREATE OR REPLACE FUNCTION alerts_run_close(run_id bigint, secret text, outcome text, run_counts jsonb DEFAULT NULL,
                                            run_error text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as alerts_run_finished(), only with the secret its alerts_run_open() returned;
-- returns false and changes nothing otherwise. Lock: row lock of the UPDATE.
    SELECT CASE WHEN EXISTS (SELECT 1 FROM alerts_runs r
                              WHERE r.id = run_id AND r.secret_hash = alerts_secret_hash(secret))
                THEN alerts_run_finished(run_id, outcome, run_counts, run_error)
                ELSE false END
$$;
COMMENT ON FUNCTION alerts_run_close(bigint, text, text, jsonb, text) IS
    'Closes a run-history row as ok, skipped or failed, with the secret alerts_run_open() returned. Example: SELECT alerts_run_close(7, ''<secret>'', ''ok'', ''{"created": 3}'');';
