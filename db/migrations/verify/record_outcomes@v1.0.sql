-- Verify alerts_v2:record_outcomes
SELECT 'mark_deliveries_sent(bigint[], text[])'::regprocedure,
       'mark_deliveries_failed(bigint[], text[])'::regprocedure,
       'mark_deliveries_skipped(bigint[], text[])'::regprocedure,
       'requeue_deliveries(bigint[], text[])'::regprocedure,
       'release_deliveries(bigint[])'::regprocedure;
