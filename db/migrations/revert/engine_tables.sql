-- Revert alerts_v2:engine_tables
BEGIN;
DROP TABLE IF EXISTS user_alert_deliveries;
DROP TABLE IF EXISTS alert_events;
DROP TABLE IF EXISTS alerts_config;
COMMIT;
