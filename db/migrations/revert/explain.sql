-- Revert alerts_v2:explain
BEGIN;
SET LOCAL lock_timeout = '5s';
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_explain(bigint, bigint);
COMMIT;
