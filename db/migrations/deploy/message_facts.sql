-- Deploy alerts_v2:message_facts
-- alert_message_facts(): what a message says beyond the claim, read as the engine's owner.
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/alert_message_facts.sql
REVOKE ALL ON FUNCTION alerts_optional_event_column(text[], text[]), alert_message_facts(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alert_message_facts(bigint[]) TO alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
