-- Verify alerts_v2:reclaim_expired_deliveries
SELECT 'reclaim_expired_deliveries()'::regprocedure;
