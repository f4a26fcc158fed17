-- Verify alerts_v2:record_outcomes (fenced by claim tokens; the unfenced signatures are gone)
SELECT 'mark_deliveries_sent(bigint[], bigint[], text[])'::regprocedure,
       'mark_deliveries_failed(bigint[], bigint[], text[])'::regprocedure,
       'mark_deliveries_skipped(bigint[], bigint[], text[])'::regprocedure,
       'requeue_deliveries(bigint[], bigint[], text[])'::regprocedure,
       'release_deliveries(bigint[], bigint[])'::regprocedure;
SELECT 1 / (to_regprocedure('release_deliveries(bigint[])') IS NULL)::integer;
