-- Verify alerts_v2:roles
-- Division by zero unless the runner may execute the phases but not read the queue.
SELECT 1 / has_function_privilege('alerts_runner', 'alerts_phase_a()', 'EXECUTE')::integer;
SELECT 1 / (NOT has_table_privilege('alerts_runner', 'user_alert_deliveries', 'SELECT'))::integer;
SELECT 1 / (NOT has_function_privilege('public', 'claim_deliveries(integer)', 'EXECUTE'))::integer;
