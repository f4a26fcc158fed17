-- Deploy alerts_v2:record_outcomes (fenced, and only sending -> the outcome each function names)
-- The unfenced signatures are dropped, so no path can record without a claim token.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_sent(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_failed(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS mark_deliveries_skipped(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS requeue_deliveries(bigint[], text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS release_deliveries(bigint[]);
\ir ../../functions/claim_token_check.sql
\ir ../../functions/mark_deliveries_sent.sql
\ir ../../functions/finish_deliveries.sql
\ir ../../functions/requeue_deliveries.sql
\ir ../../functions/release_deliveries.sql
REVOKE ALL ON FUNCTION
    alerts_check_claim_tokens(text, bigint[], bigint[]),
    alerts_finish_deliveries(text, text, bigint[], bigint[], text[]),
    mark_deliveries_sent(bigint[], bigint[], text[]), mark_deliveries_failed(bigint[], bigint[], text[]),
    mark_deliveries_skipped(bigint[], bigint[], text[]), requeue_deliveries(bigint[], bigint[], text[]),
    release_deliveries(bigint[], bigint[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    mark_deliveries_sent(bigint[], bigint[], text[]), mark_deliveries_failed(bigint[], bigint[], text[]),
    mark_deliveries_skipped(bigint[], bigint[], text[]), requeue_deliveries(bigint[], bigint[], text[]),
    release_deliveries(bigint[], bigint[])
TO alerts_runner;
SELECT alerts_assign_owner();
COMMIT;
