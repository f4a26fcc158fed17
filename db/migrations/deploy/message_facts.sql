-- Deploy alerts_v2:message_facts
-- alert_message_facts(): what a message says beyond the claim, read as the engine's owner; the
-- runner gets it only for the events of rows it holds a claim on (ids, claim_tokens).
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/alert_message_facts.sql
REVOKE ALL ON FUNCTION alerts_optional_event_column(text[], text[]), alert_message_facts(bigint[]),
    alert_message_facts(bigint[], bigint[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION alert_message_facts(bigint[]) FROM alerts_runner;
GRANT EXECUTE ON FUNCTION alert_message_facts(bigint[], bigint[]) TO alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
