-- Deploy alerts_v2:source_indexes
-- Indexes on the host's input tables for the engine's hot reads, so that their cost stays flat
-- in the size of the history (years of readings, millions of events):
--   * Phase A's recent readings and events: risk_indices, asset_risk by calculated_at, events by
--     inserted_at;
--   * the reading before a spike's (Phase A) and a message's reading and baseline
--     (alert_message_facts): risk_indices by (btrim(region), window_days, calculated_at, id) and
--     asset_risk by (btrim(region), lower(btrim(asset)), window_days, calculated_at, id), the
--     expressions the engine compares, partial to the lengths Phase A accepts (a region of at
--     most 200 characters, an asset of at most 100): a longer value the host writes is not
--     indexed, so it can never make the host's INSERT fail on the index's row size limit;
--   * Phase B's range of users: user_alert_prefs by user_id.
-- Performance only, no data: the host's tables keep their owner, columns and rows. An index is
-- built only on a table the deploying role may index (it owns it, or is a member of its owner);
-- on any other the deploy says so (WARNING) and goes on, and a DBA can run the statement below as
-- the owner. No BEGIN/COMMIT: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, so
-- this script runs statement by statement; writers go on meanwhile.
SET lock_timeout = '5s';
SET client_min_messages = warning;

-- 1. INVALID leftovers of an interrupted build are dropped, to be built again below.
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I', c.relname)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE NOT i.indisvalid
   AND c.relname IN ('risk_indices_calculated_at_idx', 'risk_indices_reading_idx',
                     'asset_risk_calculated_at_idx', 'asset_risk_reading_idx',
                     'events_inserted_at_idx', 'user_alert_prefs_user_id_idx')
\gexec

-- 2. The builds, on the tables this role may index.
SET lock_timeout = '10min';
SELECT CASE WHEN pg_has_role(c.relowner, 'USAGE') THEN wanted.statement
            ELSE format('DO $notice$ BEGIN RAISE WARNING %L; END $notice$',
                        format('source_indexes: not the owner of %s; as its owner run: %s', wanted.tbl, wanted.statement))
       END
  FROM (VALUES
        ('risk_indices', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS risk_indices_calculated_at_idx ON risk_indices (calculated_at)'),
        ('risk_indices', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS risk_indices_reading_idx ON risk_indices ((btrim(region)), window_days, calculated_at, id) WHERE length(btrim(region)) <= 200'),
        ('asset_risk', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS asset_risk_calculated_at_idx ON asset_risk (calculated_at)'),
        ('asset_risk', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS asset_risk_reading_idx ON asset_risk ((btrim(region)), (lower(btrim(asset))), window_days, calculated_at, id) WHERE length(btrim(region)) <= 200 AND length(btrim(asset)) <= 100'),
        ('events', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS events_inserted_at_idx ON events (inserted_at)'),
        ('user_alert_prefs', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS user_alert_prefs_user_id_idx ON user_alert_prefs (user_id)')
       ) AS wanted (tbl, statement)
  JOIN pg_class c ON c.oid = to_regclass('public.' || wanted.tbl)
\gexec

SET lock_timeout = '5s';
RESET client_min_messages;
