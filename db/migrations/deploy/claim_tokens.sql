-- Deploy alerts_v2:claim_tokens
-- Guarantees once it has run: every claim of a delivery or digest carries a fencing token
-- (claim_token, a new value from alerts_claim_token_seq per claim), and a row in 'sending'
-- always has one, so an outcome can name the claim it belongs to. A sender whose lease
-- expired and whose rows were claimed again can then no longer overwrite the newer claim.
-- The columns are added bare (no rewrite, no scan); rows a runner of the previous version
-- holds in 'sending' get a token before the CHECK is added NOT VALID and then validated,
-- which takes only a SHARE UPDATE EXCLUSIVE lock: reads and writes go on meanwhile.
BEGIN;
SET LOCAL lock_timeout = '5s';
CREATE SEQUENCE IF NOT EXISTS alerts_claim_token_seq AS bigint;
ALTER TABLE user_alert_deliveries ADD COLUMN IF NOT EXISTS claim_token bigint;
ALTER TABLE alert_digests ADD COLUMN IF NOT EXISTS claim_token bigint;
UPDATE user_alert_deliveries SET claim_token = nextval('alerts_claim_token_seq')
 WHERE status = 'sending' AND claim_token IS NULL;
UPDATE alert_digests SET claim_token = nextval('alerts_claim_token_seq')
 WHERE status = 'sending' AND claim_token IS NULL;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'user_alert_deliveries_sending_has_claim_token') THEN
        ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_sending_has_claim_token
            CHECK (status <> 'sending' OR claim_token IS NOT NULL) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alert_digests_sending_has_claim_token') THEN
        ALTER TABLE alert_digests ADD CONSTRAINT alert_digests_sending_has_claim_token
            CHECK (status <> 'sending' OR claim_token IS NOT NULL) NOT VALID;
    END IF;
END
$$;
COMMIT;

BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE user_alert_deliveries VALIDATE CONSTRAINT user_alert_deliveries_sending_has_claim_token;
ALTER TABLE alert_digests VALIDATE CONSTRAINT alert_digests_sending_has_claim_token;
COMMIT;
