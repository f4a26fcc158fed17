-- Revert alerts_v2:bounded_statements
BEGIN;
SET LOCAL lock_timeout = '5s';
DROP FUNCTION IF EXISTS alerts_fanout_chunk_rows();
ALTER TABLE alert_events
    DROP CONSTRAINT IF EXISTS alert_events_cursor_only_while_fanning_out,
    DROP COLUMN IF EXISTS fanout_user_cursor;
ALTER TABLE alerts_config
    DROP CONSTRAINT IF EXISTS alerts_config_fanout_chunk_rows_positive,
    DROP CONSTRAINT IF EXISTS alerts_config_reclaim_batch_positive,
    DROP COLUMN IF EXISTS fanout_chunk_rows,
    DROP CONSTRAINT IF EXISTS alerts_config_digest_batch_positive,
    DROP COLUMN IF EXISTS reclaim_batch,
    DROP COLUMN IF EXISTS digest_batch,
    DROP CONSTRAINT IF EXISTS alerts_config_source_batch_positive,
    DROP COLUMN IF EXISTS source_batch;
COMMIT;
