-- Revert alerts_v2:claim_tokens
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE user_alert_deliveries DROP CONSTRAINT IF EXISTS user_alert_deliveries_sending_has_claim_token;
ALTER TABLE alert_digests DROP CONSTRAINT IF EXISTS alert_digests_sending_has_claim_token;
ALTER TABLE user_alert_deliveries DROP COLUMN IF EXISTS claim_token;
ALTER TABLE alert_digests DROP COLUMN IF EXISTS claim_token;
DROP SEQUENCE IF EXISTS alerts_claim_token_seq;
COMMIT;
