-- Verify alerts_v2:explain
SELECT 'alerts_explain(bigint, bigint)'::regprocedure;
SELECT 1 / has_function_privilege('alerts_readonly', 'alerts_explain(bigint, bigint)', 'EXECUTE')::integer;
