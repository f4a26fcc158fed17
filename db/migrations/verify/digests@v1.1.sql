-- Verify alerts_v2:digests
SELECT id, digest_key, user_id, channel, period, window_start, window_end, status, attempts, next_retry_at,
       last_error, sent_at, provider_message_id, claimed_at, lease_expires_at, created_at
  FROM alert_digests WHERE false;
SELECT digest_id FROM user_alert_deliveries WHERE false;
SELECT digest_period, digest_grace FROM alerts_config WHERE false;
SELECT 'alerts_phase_d()'::regprocedure, 'claim_digests(integer, text[])'::regprocedure,
       'record_digest_outcomes(text, bigint[], text[])'::regprocedure, 'reclaim_expired_digests()'::regprocedure,
       'count_due_digests(integer, text[])'::regprocedure;
