-- Deploy alerts_v2:phase_a_alert_events
BEGIN;
\ir ../../functions/phase_a_alert_events.sql
COMMIT;
