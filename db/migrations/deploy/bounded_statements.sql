-- Deploy alerts_v2:bounded_statements
-- Bounded statements: what lets every scheduled statement touch a bounded number of rows
-- whatever the backlog, so each run makes progress under a DBA's statement_timeout.
--   alert_events.fanout_user_cursor: while an event's fanout is in progress, the largest users.id
--     it has been fanned out to (each Phase B call fans a range of users out and moves it on, in
--     the transaction of that range's deliveries); NULL before the first range and once done.
--   alerts_config.fanout_chunk_rows: how many (event, user) pairs one Phase B call considers.
--   alerts_config.reclaim_batch: how many rows one reclaim call changes (expired deliveries, or
--     expired digests with their members).
--   alerts_config.source_batch: how many new high-impact events one Phase A call turns into alerts.
--   alerts_config.digest_batch: how many waiting digest members one Phase D call gathers (with
--     the rest of their windows).
-- Columns are added bare (no rewrite); the CHECK is added NOT VALID and validated, which reads
-- the table without blocking its writers.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alert_events ADD COLUMN IF NOT EXISTS fanout_user_cursor bigint;
ALTER TABLE alerts_config
    ADD COLUMN IF NOT EXISTS fanout_chunk_rows integer NOT NULL DEFAULT 50000,
    ADD COLUMN IF NOT EXISTS reclaim_batch integer NOT NULL DEFAULT 5000,
    ADD COLUMN IF NOT EXISTS digest_batch integer NOT NULL DEFAULT 10000,
    ADD COLUMN IF NOT EXISTS source_batch integer NOT NULL DEFAULT 10000;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alert_events_cursor_only_while_fanning_out') THEN
        ALTER TABLE alert_events ADD CONSTRAINT alert_events_cursor_only_while_fanning_out
            CHECK (fanout_completed_at IS NULL OR fanout_user_cursor IS NULL) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_fanout_chunk_rows_positive') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_fanout_chunk_rows_positive
            CHECK (fanout_chunk_rows >= 1);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_source_batch_positive') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_source_batch_positive
            CHECK (source_batch >= 1);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_digest_batch_positive') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_digest_batch_positive
            CHECK (digest_batch >= 1);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_reclaim_batch_positive') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_reclaim_batch_positive
            CHECK (reclaim_batch >= 1);
    END IF;
END
$$;
COMMENT ON COLUMN alert_events.fanout_user_cursor IS
    'Phase B: while the fanout is in progress, the largest users.id fanned out so far; NULL before and after.';
COMMENT ON COLUMN alerts_config.fanout_chunk_rows IS
    'Phase B: (event, user) pairs one call considers; the runner halves it for the run when a statement times out.';
COMMENT ON COLUMN alerts_config.reclaim_batch IS
    'Phase C: expired claims one reclaim call returns to the queue; the runner calls it until none is left.';
COMMENT ON COLUMN alerts_config.source_batch IS
    'Phase A: new high-impact events one call turns into alert events (the oldest first); the runner calls it while more wait.';
COMMENT ON COLUMN alerts_config.digest_batch IS
    'Phase D: waiting digest members one call gathers (with the rest of their windows).';
\ir ../../functions/fanout_chunk_rows.sql
SELECT alerts_assign_owner();
COMMIT;

BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alert_events VALIDATE CONSTRAINT alert_events_cursor_only_while_fanning_out;
COMMIT;
