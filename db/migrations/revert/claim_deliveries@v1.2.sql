-- Revert alerts_v2:claim_deliveries to its @v1.1 version (no claim token), with its grants.
BEGIN;
DROP FUNCTION IF EXISTS claim_deliveries(integer);
DROP FUNCTION IF EXISTS claim_deliveries(integer, text[]);
COMMIT;
\ir ../deploy/claim_deliveries@v1.1.sql
BEGIN;
REVOKE ALL ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]) TO alerts_runner;
COMMIT;
