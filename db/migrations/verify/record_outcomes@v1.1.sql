-- Verify alerts_v2:record_outcomes (reworked after v1.0: mark_deliveries_sent is plpgsql)
SELECT 'mark_deliveries_failed(bigint[], text[])'::regprocedure,
       'mark_deliveries_skipped(bigint[], text[])'::regprocedure,
       'requeue_deliveries(bigint[], text[])'::regprocedure,
       'release_deliveries(bigint[])'::regprocedure;
SELECT 1 / count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.oid = 'mark_deliveries_sent(bigint[], text[])'::regprocedure AND l.lanname = 'plpgsql';
