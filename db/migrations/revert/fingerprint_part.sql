-- Revert alerts_v2:fingerprint_part
BEGIN;
DROP FUNCTION IF EXISTS alerts_fingerprint_part(text);
COMMIT;
