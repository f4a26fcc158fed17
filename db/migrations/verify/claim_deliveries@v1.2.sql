-- Verify alerts_v2:claim_deliveries (the claim returns a claim_token)
SELECT 1 / count(*)::integer FROM pg_proc
 WHERE oid = 'claim_deliveries(integer, text[])'::regprocedure AND 'claim_token' = ANY (proargnames);
SELECT 'claim_deliveries(integer)'::regprocedure, 'count_due_deliveries(integer, text[])'::regprocedure;
