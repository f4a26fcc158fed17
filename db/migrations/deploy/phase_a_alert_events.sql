-- Deploy alerts_v2:phase_a_alert_events
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/phase_a_alert_events.sql
SELECT alerts_assign_owner();
COMMIT;
