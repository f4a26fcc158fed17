-- Deploy alerts_v2:run_history@v1.2 (the version tagged v1.2; reworked since, so its included
-- files are inlined as they were then; revert/run_history.sql restores them)
-- One row per phase run, its counts or its error; alerts_status() and retention.
BEGIN;
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS alerts_runs (
    id bigserial PRIMARY KEY,
    phase text NOT NULL CHECK (phase IN ('a', 'b', 'c', 'd')),
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'skipped', 'failed')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    counts jsonb,
    error text,
    CONSTRAINT alerts_runs_finished_unless_running CHECK ((status = 'running') = (finished_at IS NULL)),
    CONSTRAINT alerts_runs_failed_has_error CHECK (status <> 'failed' OR error IS NOT NULL),
    CONSTRAINT alerts_runs_finished_after_start CHECK (finished_at >= started_at)
);
CREATE INDEX IF NOT EXISTS alerts_runs_phase_started_idx ON alerts_runs (phase, started_at);

-- db/functions/run_history.sql as it was at @v1.2 (frozen copy).
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
-- db/functions/alerts_status.sql as it was at @v1.2 (frozen copy).
-- The pipeline's health in one jsonb, for monitors and `runner.py --status`.
-- Reads only the small, indexed sets (queued, sending, recent failures, recent runs).
CREATE OR REPLACE FUNCTION alerts_status()
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH queued AS (
        SELECT count(*) FILTER (WHERE coalesce(d.next_retry_at, d.created_at) <= now()) AS due,
               count(*) FILTER (WHERE coalesce(d.next_retry_at, d.created_at) > now()) AS waiting_retry,
               extract(epoch FROM now() - min(coalesce(d.next_retry_at, d.created_at))
                       FILTER (WHERE coalesce(d.next_retry_at, d.created_at) <= now())) AS oldest_due_age
          FROM user_alert_deliveries d
         WHERE d.status = 'queued' AND d.delivery_kind = 'instant'
    ),
    sending AS (
        SELECT count(*) AS claimed, count(*) FILTER (WHERE d.lease_expires_at < now()) AS stuck
          FROM user_alert_deliveries d
         WHERE d.status = 'sending'
    ),
    recent_failures AS (
        SELECT d.id, d.channel, d.attempts, d.last_error, d.created_at
          FROM user_alert_deliveries d
         WHERE d.status = 'failed' AND d.created_at >= now() - interval '24 hours'
    ),
    last_runs AS (
        SELECT DISTINCT ON (r.phase) r.phase, r.status, r.started_at, r.finished_at, r.error
          FROM alerts_runs r
         WHERE r.started_at >= now() - interval '7 days'
         ORDER BY r.phase, r.started_at DESC
    )
    SELECT jsonb_build_object(
        'queued_due', q.due,
        'queued_waiting_retry', q.waiting_retry,
        'oldest_due_age_seconds', round(coalesce(q.oldest_due_age, 0)::numeric, 1),
        'sending', s.claimed,
        'stuck_sending', s.stuck,
        'failed_last_24h', (SELECT count(*) FROM recent_failures),
        'recent_failures', coalesce((SELECT jsonb_agg(to_jsonb(f) ORDER BY f.id DESC)
                                       FROM (SELECT * FROM recent_failures ORDER BY id DESC LIMIT 5) f), '[]'),
        'last_runs', coalesce((SELECT jsonb_object_agg(lr.phase, to_jsonb(lr) - 'phase') FROM last_runs lr), '{}'))
      FROM queued q, sending s
$$;
COMMENT ON FUNCTION alerts_status() IS
    'Queue depth, age of the oldest due delivery, stuck sending rows, recent failures and the last run of each phase. Example: SELECT jsonb_pretty(alerts_status());';
-- db/functions/alerts_prune.sql as it was at @v1.2 (frozen copy).
-- Retention: deletes finished history in small batches so that no statement holds
-- many row locks or runs long; call it until it returns 0 (runner.py --prune does).
CREATE OR REPLACE FUNCTION alerts_prune(older_than interval, batch integer DEFAULT 5000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: deletes at most batch deliveries that are 'sent' or 'skipped' and at most
-- batch finished runs, all created before now() - older_than; never a queued, sending or
-- failed delivery, never an alert event (their fingerprints keep Phase A idempotent), and
-- only the engine's own deliveries: kinds 'instant' and 'digest' on its channels (on a
-- table adopted from a host application, rows of the host's kinds and channels, for
-- example index digests or alerts shown in a web account, are the host's history).
-- Lock: row locks of the DELETEs.
DECLARE
    deliveries_deleted integer;
    runs_deleted integer;
BEGIN
    IF older_than IS NULL OR older_than < interval '1 hour' OR batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'alerts_prune: older_than must be at least 1 hour and batch positive, got % and %',
            older_than, batch USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH old_deliveries AS (
        SELECT d.id FROM user_alert_deliveries d
         WHERE d.status IN ('sent', 'skipped') AND d.created_at < now() - older_than
           AND d.delivery_kind IN ('instant', 'digest') AND d.channel IN ('email', 'telegram', 'sms')
         ORDER BY d.id LIMIT batch
    )
    DELETE FROM user_alert_deliveries d USING old_deliveries o WHERE d.id = o.id;
    GET DIAGNOSTICS deliveries_deleted = ROW_COUNT;

    WITH old_runs AS (
        SELECT r.id FROM alerts_runs r
         WHERE r.status <> 'running' AND r.started_at < now() - older_than
         ORDER BY r.id LIMIT batch
    )
    DELETE FROM alerts_runs r USING old_runs o WHERE r.id = o.id;
    GET DIAGNOSTICS runs_deleted = ROW_COUNT;
    RETURN deliveries_deleted + runs_deleted;
END;
$$;
COMMENT ON FUNCTION alerts_prune(interval, integer) IS
    'Deletes up to batch sent/skipped deliveries of the engine''s kinds and channels and finished runs older than older_than; returns how many rows it deleted. Repeat until 0. Example: SELECT alerts_prune(''90 days'', 5000);';
COMMIT;
