-- Revert alerts_v2:record_outcomes to its @v1.3 version: that version's deploy script, frozen,
-- then the shared outcome function that version does not have.
\ir ../deploy/record_outcomes@v1.3.sql
BEGIN;
DROP FUNCTION IF EXISTS alerts_record_delivery_outcomes(text, bigint[], bigint[], text[], text[]);
COMMIT;
