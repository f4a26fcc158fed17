-- Verify alerts_v2:message_facts
-- Division by zero unless the runner role may call the claim-checked form, and only that one.
SELECT 1 / has_function_privilege('alerts_runner', 'alert_message_facts(bigint[], bigint[])', 'EXECUTE')::integer;
SELECT 1 / (NOT has_function_privilege('alerts_runner', 'alert_message_facts(bigint[])', 'EXECUTE'))::integer;
SELECT count(*) FROM alert_message_facts(ARRAY[]::bigint[], ARRAY[]::bigint[]);
-- Reworked after v1.2: readings compared as stored, so their indexes serve the look-ups.
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alert_message_facts(bigint[])'::regprocedure AND prosrc LIKE '%r.calculated_at >= wa.reading_day%';
