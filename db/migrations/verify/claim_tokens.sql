-- Verify alerts_v2:claim_tokens
SELECT claim_token FROM user_alert_deliveries WHERE false;
SELECT claim_token FROM alert_digests WHERE false;
SELECT 'alerts_claim_token_seq'::regclass;
SELECT 1 / (count(*) = 2)::integer FROM pg_constraint
 WHERE conname IN ('user_alert_deliveries_sending_has_claim_token', 'alert_digests_sending_has_claim_token')
   AND convalidated;
