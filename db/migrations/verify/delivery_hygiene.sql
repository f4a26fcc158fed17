-- Verify alerts_v2:delivery_hygiene
SELECT user_id, channel, since, source, skipped, last_skipped_at FROM alerts_channel_optouts WHERE false;
SELECT channel, destination, reason, source, since, skipped, last_skipped_at FROM alerts_suppressions WHERE false;
SELECT name, secret, updated_at FROM alerts_secrets WHERE false;
SELECT 'alerts_unsubscribe(text)'::regprocedure, 'alerts_record_bounce(text, text, text)'::regprocedure,
       'alerts_unsuppress(text, text)'::regprocedure, 'alerts_claims_to_skip(text, bigint[], bigint[])'::regprocedure,
       'alerts_record_suppressions(text, bigint[], bigint[], text[])'::regprocedure;
-- Division by zero unless HMAC-SHA256 gives RFC 4231's test case 2.
SELECT 1 / (encode(alerts_hmac_sha256('Jefe'::bytea, 'what do ya want for nothing?'::bytea), 'hex')
            = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')::integer;
