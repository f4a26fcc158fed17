-- Revert alerts_v2:indexes_concurrently
-- Drops the engine's non-unique indexes (performance only, no data; a deploy builds
-- them again). The unique keys are kept: on tables engine_tables created they belong
-- to engine_tables (whose revert drops the tables), and on adopted pre-v2 tables they
-- keep the merged duplicates from coming back. No BEGIN/COMMIT: DROP INDEX
-- CONCURRENTLY takes no lock that blocks the application.
SET lock_timeout = '5s';
DROP INDEX CONCURRENTLY IF EXISTS alert_events_unfanned_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_queued_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_sending_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_failed_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_user_day_idx;
RESET lock_timeout;
