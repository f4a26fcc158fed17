-- Revert alerts_v2:digests
BEGIN;
DROP FUNCTION IF EXISTS count_due_digests(integer, text[]);
DROP FUNCTION IF EXISTS reclaim_expired_digests();
DROP FUNCTION IF EXISTS record_digest_outcomes(text, bigint[], text[]);
DROP FUNCTION IF EXISTS claim_digests(integer, text[]);
DROP FUNCTION IF EXISTS alerts_phase_d();
ALTER TABLE user_alert_deliveries DROP COLUMN IF EXISTS digest_id;
DROP TABLE IF EXISTS alert_digests;
ALTER TABLE alerts_config DROP COLUMN IF EXISTS digest_grace, DROP COLUMN IF EXISTS digest_period;
COMMIT;
