-- Revert alerts_v2:lock_keys
BEGIN;
DROP FUNCTION IF EXISTS alerts_settings();
DROP FUNCTION IF EXISTS alerts_lock_skipped(text);
DROP FUNCTION IF EXISTS alerts_lock_key(text);
COMMIT;
