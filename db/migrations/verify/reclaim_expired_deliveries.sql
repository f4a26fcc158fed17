-- Verify alerts_v2:reclaim_expired_deliveries (reworked after v1.2: bounded, SKIP LOCKED)
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'reclaim_expired_deliveries()'::regprocedure AND prosrc LIKE '%reclaim_batch%';
