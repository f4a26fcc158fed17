-- Revert alerts_v2:claim_deliveries
BEGIN;
DROP FUNCTION IF EXISTS count_due_deliveries(integer, text[]);
DROP FUNCTION IF EXISTS claim_deliveries(integer, text[]);
DROP FUNCTION IF EXISTS claim_deliveries(integer);
DROP FUNCTION IF EXISTS alerts_user_destination(users, text);
COMMIT;
