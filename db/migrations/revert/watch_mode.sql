-- Revert alerts_v2:watch_mode
-- Removes the notify triggers from the host's tables and the engine's, then watch mode's objects.
BEGIN;
SET LOCAL lock_timeout = '5s';
DROP TRIGGER IF EXISTS alerts_v2_notify_watchers ON user_alert_deliveries;
DROP TRIGGER IF EXISTS alerts_v2_notify_watchers ON asset_risk;
DROP TRIGGER IF EXISTS alerts_v2_notify_watchers ON risk_indices;
DROP TRIGGER IF EXISTS alerts_v2_notify_watchers ON events;
DROP FUNCTION IF EXISTS alerts_notify_watchers();
DROP FUNCTION IF EXISTS alerts_watch_status(interval);
DROP FUNCTION IF EXISTS alerts_next_wake();
DROP FUNCTION IF EXISTS alerts_watcher_stopped(text);
DROP FUNCTION IF EXISTS alerts_watcher_beat(text, jsonb, text);
DROP FUNCTION IF EXISTS alerts_watcher_started(text, text, integer);
DROP TABLE IF EXISTS alerts_watchers;
COMMIT;
