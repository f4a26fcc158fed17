-- Deploy alerts_v2:indexes_concurrently
-- The engine tables' unique keys and indexes, built CONCURRENTLY: on an adopted pre-v2
-- table with millions of rows, reads and writes go on while they are built. Guarantees
-- once it has run:
--   * UNIQUE (event_fingerprint) and UNIQUE (alert_event_id, user_id, channel,
--     delivery_kind) hold, as constraints named as engine_tables names them;
--   * the claim queue, lease, failure, quota and Phase B indexes exist;
--   * none of them is INVALID: a build that failed or was cancelled (lock timeout,
--     statement timeout, a duplicate, a crash) leaves an INVALID index behind, which
--     the next deploy drops and builds again.
-- On tables engine_tables created, the unique keys already exist and are kept.
-- The pre-v2 unique index on (user_id, alert_event_id, channel), if any, is kept: the
-- application's INSERT ... ON CONFLICT (user_id, alert_event_id, channel) needs it
-- (docs/DBA.md, "The legacy upgrade").
-- No BEGIN/COMMIT: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, so
-- this script runs statement by statement (psql, and alerts/migrate.py alike).
SET lock_timeout = '5s';
SET client_min_messages = warning;

-- 1. INVALID leftovers of an interrupted build are dropped (CREATE ... IF NOT EXISTS
--    would otherwise see the name taken and skip it).
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I', c.relname)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid IN ('alert_events'::regclass, 'user_alert_deliveries'::regclass)
   AND NOT i.indisvalid
   AND c.relname IN ('alert_events_event_fingerprint_key', 'user_alert_deliveries_unique_key',
                     'alert_events_unfanned_idx', 'user_alert_deliveries_queued_idx',
                     'user_alert_deliveries_sending_idx', 'user_alert_deliveries_failed_idx',
                     'user_alert_deliveries_user_day_idx')
\gexec

-- 2. The builds. CONCURRENTLY waits, without blocking anyone, for older transactions to
--    finish; it gives up after 10 minutes (the next deploy builds again).
SET lock_timeout = '10min';

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS alert_events_event_fingerprint_key
    ON alert_events (event_fingerprint);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_unique_key
    ON user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind);

-- Phase B's work list: the events not yet fanned out.
CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_events_unfanned_idx
    ON alert_events (created_at, id) WHERE fanout_completed_at IS NULL;
-- The claim queue: queued instant deliveries by the time they fall due (created_at,
-- or next_retry_at after a transient failure). The index matches claim_deliveries'
-- ORDER BY, so a claim never sorts the queue, and rows waiting for a retry sit
-- past the due ones instead of being re-read by every claim.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_queued_idx
    ON user_alert_deliveries ((coalesce(next_retry_at, created_at)), id)
    WHERE status = 'queued' AND delivery_kind = 'instant';
-- Claimed rows by lease expiry, for reclaim_expired_deliveries() and monitoring.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_sending_idx
    ON user_alert_deliveries (lease_expires_at) WHERE status = 'sending';
-- Recent permanent failures, for alerts_status().
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_failed_idx
    ON user_alert_deliveries (created_at) WHERE status = 'failed';
-- Daily quota look-ups in Phase B: deliveries of one user and channel today.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_user_day_idx
    ON user_alert_deliveries (user_id, channel, created_at);

SET lock_timeout = '5s';

-- 3. The unique indexes become the constraints engine_tables declares (a short lock, no
--    scan: the index already proves uniqueness). Phase A's ON CONFLICT (event_fingerprint)
--    and Phase B's ON CONFLICT on the four columns infer them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'alert_events'::regclass AND conname = 'alert_events_event_fingerprint_key') THEN
        ALTER TABLE alert_events
            ADD CONSTRAINT alert_events_event_fingerprint_key UNIQUE USING INDEX alert_events_event_fingerprint_key;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'user_alert_deliveries'::regclass
                      AND conname = 'user_alert_deliveries_unique_key') THEN
        ALTER TABLE user_alert_deliveries
            ADD CONSTRAINT user_alert_deliveries_unique_key UNIQUE USING INDEX user_alert_deliveries_unique_key;
    END IF;
END
$$;

RESET client_min_messages;
RESET lock_timeout;
