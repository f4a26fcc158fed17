-- Run history: one alerts_runs row per phase run, opened before the work and
-- closed after it (ok, skipped or failed), so a run that dies leaves a 'running'
-- row behind as evidence. Dry runs write nothing.
CREATE OR REPLACE FUNCTION alerts_run_started(phase text)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: one new 'running' row. Lock: none beyond the INSERT.
    INSERT INTO alerts_runs (phase) VALUES (phase) RETURNING id
$$;
COMMENT ON FUNCTION alerts_run_started(text) IS
    'Opens a run-history row for a phase run and returns its id. Example: SELECT alerts_run_started(''c'');';

CREATE OR REPLACE FUNCTION alerts_run_finished(run_id bigint, outcome text, run_counts jsonb DEFAULT NULL,
                                               run_error text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: closes a row only while it is still 'running'. Lock: row lock of the UPDATE.
    WITH finished AS (
        UPDATE alerts_runs r
           SET status = outcome, finished_at = greatest(now(), r.started_at), counts = run_counts,
               error = left(run_error, 2000)
         WHERE r.id = run_id AND r.status = 'running'
        RETURNING r.id
    )
    SELECT count(*) = 1 FROM finished
$$;
COMMENT ON FUNCTION alerts_run_finished(bigint, text, jsonb, text) IS
    'Closes a run-history row as ok, skipped or failed with its counts or error. Example: SELECT alerts_run_finished(7, ''ok'', ''{"created": 3}'');';
