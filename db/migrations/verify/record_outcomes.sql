-- Verify alerts_v2:record_outcomes (reworked after v1.3: every outcome function calls the one fenced UPDATE)
SELECT 'alerts_record_delivery_outcomes(text, bigint[], bigint[], text[], text[])'::regprocedure;
SELECT 1 / (count(*) = 5)::integer FROM pg_proc
 WHERE oid IN ('mark_deliveries_sent(bigint[], bigint[], text[])'::regprocedure,
               'mark_deliveries_failed(bigint[], bigint[], text[])'::regprocedure,
               'mark_deliveries_skipped(bigint[], bigint[], text[])'::regprocedure,
               'requeue_deliveries(bigint[], bigint[], text[])'::regprocedure,
               'release_deliveries(bigint[], bigint[])'::regprocedure)
   AND prosrc LIKE '%alerts_record_delivery_outcomes(%';
