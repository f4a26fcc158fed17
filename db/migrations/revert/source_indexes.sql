-- Revert alerts_v2:source_indexes
-- Drops the engine's indexes on the host's input tables (performance only, no data).
-- No BEGIN/COMMIT: DROP INDEX CONCURRENTLY takes no lock that blocks the application.
SET lock_timeout = '5s';
DROP INDEX CONCURRENTLY IF EXISTS risk_indices_calculated_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS risk_indices_reading_idx;
DROP INDEX CONCURRENTLY IF EXISTS asset_risk_calculated_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS asset_risk_reading_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_inserted_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_prefs_user_id_idx;
RESET lock_timeout;
