-- Deploy alerts_v2:record_outcomes (one fenced UPDATE, alerts_record_delivery_outcomes(), behind
-- every delivery outcome function; their signatures, counts and grants unchanged)
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/claim_token_check.sql
\ir ../../functions/record_delivery_outcomes.sql
\ir ../../functions/mark_deliveries_sent.sql
\ir ../../functions/finish_deliveries.sql
\ir ../../functions/requeue_deliveries.sql
\ir ../../functions/release_deliveries.sql
-- The UPDATE behind failed and skipped alone is now alerts_record_delivery_outcomes().
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_finish_deliveries(text, text, bigint[], bigint[], text[]);
REVOKE ALL ON FUNCTION
    alerts_check_claim_tokens(text, bigint[], bigint[]),
    alerts_record_delivery_outcomes(text, bigint[], bigint[], text[], text[]),
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
