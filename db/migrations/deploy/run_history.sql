-- Deploy alerts_v2:run_history (alerts_prune(): retention floor and batch cap from alerts_config)
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

\ir ../../functions/run_history.sql
\ir ../../functions/alerts_status.sql
\ir ../../functions/alerts_prune.sql
SELECT alerts_assign_owner();
COMMIT;
