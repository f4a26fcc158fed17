-- Verify alerts_v2:record_outcomes (reworked after v1.2: mark_deliveries_sent only from sending)
SELECT 'mark_deliveries_failed(bigint[], bigint[], text[])'::regprocedure,
       'mark_deliveries_skipped(bigint[], bigint[], text[])'::regprocedure,
       'requeue_deliveries(bigint[], bigint[], text[])'::regprocedure,
       'release_deliveries(bigint[], bigint[])'::regprocedure;
SELECT 1 / count(*)::integer FROM pg_proc
 WHERE oid = 'mark_deliveries_sent(bigint[], bigint[], text[])'::regprocedure AND prosrc NOT LIKE '%''failed''%';
