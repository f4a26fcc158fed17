-- Verify alerts_v2:claim_deliveries
SELECT 'claim_deliveries(integer)'::regprocedure, 'count_due_deliveries(integer)'::regprocedure;
