-- Deploy alerts_v2:digests_indexes
-- Guarantees once it has run: digest_id's foreign key and CHECK are validated, and Phase D's
-- work-list index and the digest look-up index exist and are valid. No BEGIN/COMMIT:
-- CREATE INDEX CONCURRENTLY cannot run in a transaction block, so this script runs
-- statement by statement (psql and alerts/migrate.py alike); neither step blocks writes.
SET lock_timeout = '5s';
SET client_min_messages = warning;

-- An interrupted build leaves an INVALID index: drop it so that it is built again.
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I', c.relname)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'user_alert_deliveries'::regclass
   AND NOT i.indisvalid
   AND c.relname IN ('user_alert_deliveries_digest_idx', 'user_alert_deliveries_undigested_idx')
\gexec

SET lock_timeout = '10min';
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_digest_idx
    ON user_alert_deliveries (digest_id) WHERE digest_id IS NOT NULL;
-- Phase D's work list: digest deliveries not yet in a digest.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_deliveries_undigested_idx
    ON user_alert_deliveries (created_at) WHERE delivery_kind = 'digest' AND status = 'queued' AND digest_id IS NULL;

-- VALIDATE takes only a SHARE UPDATE EXCLUSIVE lock: reads and writes go on meanwhile.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE user_alert_deliveries VALIDATE CONSTRAINT user_alert_deliveries_digest_id_fkey;
ALTER TABLE user_alert_deliveries VALIDATE CONSTRAINT user_alert_deliveries_digest_only_for_digests;
COMMIT;
