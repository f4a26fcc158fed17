-- Verify alerts_v2:claim_deliveries (reworked after v1.2: random claim tokens, batch capped)
SELECT 'claim_deliveries(integer)'::regprocedure, 'count_due_deliveries(integer, text[])'::regprocedure;
SELECT 1 / count(*)::integer FROM pg_proc
 WHERE oid = 'claim_deliveries(integer, text[])'::regprocedure
   AND prosrc LIKE '%gen_random_uuid()%' AND prosrc LIKE '%max_claim_batch%';
