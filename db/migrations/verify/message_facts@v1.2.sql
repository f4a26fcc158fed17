-- Verify alerts_v2:message_facts
-- Division by zero unless the runner role may call it.
SELECT 1 / has_function_privilege('alerts_runner', 'alert_message_facts(bigint[])', 'EXECUTE')::integer;
SELECT count(*) FROM alert_message_facts(ARRAY[]::bigint[]);
