-- Deploy alerts_v2:claim_deliveries (random claim tokens; a batch above alerts_config.max_claim_batch refused)
-- The result gains a column, which CREATE OR REPLACE cannot do: drop and create, in one transaction.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_deliveries(integer);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_deliveries(integer, text[]);
\ir ../../functions/user_destination.sql
\ir ../../functions/claim_deliveries.sql
REVOKE ALL ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]),
    count_due_deliveries(integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]),
    count_due_deliveries(integer, text[]) TO alerts_runner;
GRANT EXECUTE ON FUNCTION count_due_deliveries(integer, text[]) TO alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
