-- Verify alerts_v2:claim_deliveries
SELECT 'claim_deliveries(integer)'::regprocedure, 'claim_deliveries(integer, text[])'::regprocedure,
       'count_due_deliveries(integer, text[])'::regprocedure;
