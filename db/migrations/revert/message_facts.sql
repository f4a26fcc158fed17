-- Revert alerts_v2:message_facts to its @v1.2 version: drop the claim-checked signature, then
-- that version's deploy script, frozen (which gives the runner the one-argument form back).
BEGIN;
SET LOCAL lock_timeout = '5s';
DROP FUNCTION IF EXISTS alert_message_facts(bigint[], bigint[]);
COMMIT;
\ir ../deploy/message_facts@v1.2.sql
