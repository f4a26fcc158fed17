-- Revert alerts_v2:roles
-- Takes back what deploy granted in this database. The roles themselves are
-- cluster-wide and may serve other databases, so they are kept.
BEGIN;
REVOKE ALL ON alert_events, user_alert_deliveries, alerts_runs, alerts_config FROM alerts_readonly;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM alerts_runner, alerts_readonly;
REVOKE USAGE ON SCHEMA public FROM alerts_runner, alerts_readonly;
COMMIT;
