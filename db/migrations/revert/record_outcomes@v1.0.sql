-- Revert alerts_v2:record_outcomes
BEGIN;
DROP FUNCTION IF EXISTS mark_deliveries_sent(bigint[], text[]);
DROP FUNCTION IF EXISTS mark_deliveries_failed(bigint[], text[]);
DROP FUNCTION IF EXISTS mark_deliveries_skipped(bigint[], text[]);
DROP FUNCTION IF EXISTS requeue_deliveries(bigint[], text[]);
DROP FUNCTION IF EXISTS release_deliveries(bigint[]);
COMMIT;
