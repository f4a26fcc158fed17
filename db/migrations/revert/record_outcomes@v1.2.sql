-- Revert alerts_v2:record_outcomes to its @v1.1 version (unfenced): drop the fenced functions,
-- run that version's deploy script, frozen, and give the runner role its grants back.
BEGIN;
DROP FUNCTION IF EXISTS mark_deliveries_sent(bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS mark_deliveries_failed(bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS mark_deliveries_skipped(bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS requeue_deliveries(bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS release_deliveries(bigint[], bigint[]);
DROP FUNCTION IF EXISTS alerts_finish_deliveries(text, text, bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS alerts_check_claim_tokens(text, bigint[], bigint[]);
COMMIT;
\ir ../deploy/record_outcomes@v1.1.sql
BEGIN;
REVOKE ALL ON FUNCTION
    mark_deliveries_sent(bigint[], text[]), mark_deliveries_failed(bigint[], text[]),
    mark_deliveries_skipped(bigint[], text[]), requeue_deliveries(bigint[], text[]), release_deliveries(bigint[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    mark_deliveries_sent(bigint[], text[]), mark_deliveries_failed(bigint[], text[]),
    mark_deliveries_skipped(bigint[], text[]), requeue_deliveries(bigint[], text[]), release_deliveries(bigint[])
TO alerts_runner;
COMMIT;
