-- Verify alerts_v2:bounded_statements
SELECT fanout_user_cursor FROM alert_events WHERE false;
SELECT fanout_chunk_rows, reclaim_batch, digest_batch, source_batch FROM alerts_config WHERE false;
SELECT 1 / count(*) FROM pg_constraint
 WHERE conname = 'alert_events_cursor_only_while_fanning_out' AND convalidated;
SELECT 'alerts_fanout_chunk_rows()'::regprocedure;
