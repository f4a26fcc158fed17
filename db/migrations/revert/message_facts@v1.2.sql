-- Revert alerts_v2:message_facts
BEGIN;
DROP FUNCTION IF EXISTS alert_message_facts(bigint[]);
DROP FUNCTION IF EXISTS alerts_optional_event_column(text[], text[]);
COMMIT;
