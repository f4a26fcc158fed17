-- One-click unsubscribe (RFC 8058). Every alert email links
--   ALERTS_UNSUBSCRIBE_URL?token=<user id>.<channel>.<signature>
-- where the signature is HMAC-SHA256, keyed with ALERTS_UNSUBSCRIBE_SECRET, over
-- 'alerts-v2 unsubscribe <user id> <channel>', in unpadded base64url (43 characters): the runner
-- signs (alerts/unsubscribe.py), alerts_unsubscribe() checks. The engine learns the secret from
-- `runner.py --migrate` (alerts_set_unsubscribe_secret()) and keeps it in alerts_secrets, which
-- only alerts_owner reads.
--
-- HMAC is built from the built-in sha256() (RFC 2104), so no extension is needed (pgcrypto is
-- not installed everywhere the engine runs, and a deployer may not be allowed to create it).

CREATE OR REPLACE FUNCTION alerts_hmac_sha256(key bytea, message bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
-- Guarantees: HMAC-SHA256 of message under key (RFC 2104, RFC 4231 test vectors): a key longer
-- than the 64-byte block is hashed first, a shorter one padded with zeros. Lock: none.
    WITH block_key AS (
        SELECT k || decode(repeat('00', 64 - length(k)), 'hex') AS k
          FROM (SELECT CASE WHEN length(key) > 64 THEN sha256(key) ELSE key END AS k) shortened
    ),
    pads AS (
        SELECT decode(string_agg(lpad(to_hex(get_byte(bk.k, i) # 54), 2, '0'), '' ORDER BY i), 'hex') AS inner_pad,
               decode(string_agg(lpad(to_hex(get_byte(bk.k, i) # 92), 2, '0'), '' ORDER BY i), 'hex') AS outer_pad
          FROM block_key bk, generate_series(0, 63) AS i
    )
    SELECT sha256(p.outer_pad || sha256(p.inner_pad || message)) FROM pads p
$$;
COMMENT ON FUNCTION alerts_hmac_sha256(bytea, bytea) IS
    'HMAC-SHA256 (RFC 2104) from the built-in sha256(), no extension needed. Example: SELECT encode(alerts_hmac_sha256(''key''::bytea, ''The quick brown fox jumps over the lazy dog''::bytea), ''hex'');';

CREATE OR REPLACE FUNCTION alerts_unsubscribe_signature(secret text, user_id bigint, channel text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: the signature part of a token, as alerts/unsubscribe.py computes it: unpadded
-- base64url of HMAC-SHA256(secret, 'alerts-v2 unsubscribe <user id> <channel>'). Lock: none.
    SELECT translate(rtrim(encode(alerts_hmac_sha256(convert_to(secret, 'UTF8'),
                                                     convert_to(format('alerts-v2 unsubscribe %s %s', user_id, channel),
                                                                'UTF8')), 'base64'), '='), '+/', '-_')
$$;
COMMENT ON FUNCTION alerts_unsubscribe_signature(text, bigint, text) IS
    'The signature of an unsubscribe token: unpadded base64url of HMAC-SHA256(secret, ''alerts-v2 unsubscribe <user id> <channel>''). Example: SELECT alerts_unsubscribe_signature(''a secret of 16+ chars'', 42, ''email'');';

CREATE OR REPLACE FUNCTION alerts_secret_fingerprint(secret text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: a value that tells two secrets apart without revealing either (HMAC keyed by the
-- secret over a fixed text, hex). Lock: none.
    SELECT encode(alerts_hmac_sha256(convert_to(secret, 'UTF8'), convert_to('alerts-v2 secret fingerprint', 'UTF8')), 'hex')
$$;
COMMENT ON FUNCTION alerts_secret_fingerprint(text) IS
    'Hex HMAC-SHA256 of a fixed text keyed by the secret: compares secrets without passing them around. Example: SELECT alerts_secret_fingerprint(''a secret of 16+ chars'');';

CREATE OR REPLACE FUNCTION alerts_set_unsubscribe_secret(secret text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: alerts_secrets holds this secret for unsubscribe tokens afterwards (at least 16
-- characters, else refused); says whether it changed. Tokens signed with an earlier secret stop
-- working. Only alerts_owner (the deployer, through runner.py --migrate) may call it.
-- Lock: the secret's row.
DECLARE
    previous text := (SELECT s.secret FROM alerts_secrets s WHERE s.name = 'unsubscribe' FOR UPDATE);
BEGIN
    IF secret IS NULL OR length(secret) < 16 THEN
        RAISE EXCEPTION 'alerts_set_unsubscribe_secret: the secret must have at least 16 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO alerts_secrets AS s (name, secret, updated_at)
    VALUES ('unsubscribe', secret, now())
    ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, updated_at = now()
     WHERE s.secret IS DISTINCT FROM excluded.secret;
    RETURN jsonb_build_object('unsubscribe_secret', CASE WHEN previous IS NULL THEN 'set'
                                                        WHEN previous = secret THEN 'unchanged'
                                                        ELSE 'replaced' END);
END;
$$;
COMMENT ON FUNCTION alerts_set_unsubscribe_secret(text) IS
    'Stores the secret unsubscribe tokens are signed with (runner.py --migrate does it from ALERTS_UNSUBSCRIBE_SECRET); only alerts_owner may call it. Example: SELECT alerts_set_unsubscribe_secret(''a secret of 16+ chars'');';

CREATE OR REPLACE FUNCTION alerts_unsubscribe_secret_check(fingerprint text)
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: 'same' when fingerprint is alerts_secret_fingerprint() of the stored secret,
-- 'differs' when it is not, 'unset' when the engine has no secret; reveals nothing else and
-- changes nothing. Lock: none.
    SELECT CASE WHEN s.secret IS NULL THEN 'unset'
                WHEN alerts_secret_fingerprint(s.secret) = fingerprint THEN 'same'
                ELSE 'differs' END
      FROM (SELECT (SELECT x.secret FROM alerts_secrets x WHERE x.name = 'unsubscribe') AS secret) s
$$;
COMMENT ON FUNCTION alerts_unsubscribe_secret_check(text) IS
    'Whether a runner''s ALERTS_UNSUBSCRIBE_SECRET (passed as its fingerprint) is the one the engine checks tokens with: same, differs or unset. Example: SELECT alerts_unsubscribe_secret_check(alerts_secret_fingerprint(''a secret of 16+ chars''));';

CREATE OR REPLACE FUNCTION alerts_unsubscribe(token text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: a token whose signature checks turns that user's alerts on that channel off
-- (a row in alerts_channel_optouts: Phase B creates no more deliveries for it, and Phase C skips
-- those already queued); calling it again changes nothing and says so. A malformed token, a bad
-- signature, no secret yet or an unknown user change nothing and return {"ok": false, "reason": ...}.
-- The signature is compared through sha256 of both sides, so the time taken does not tell how
-- much of a forged signature was right. Lock: the opt-out row (INSERT ... ON CONFLICT).
DECLARE
    parts text[] := string_to_array(token, '.');
    stored_secret text := (SELECT s.secret FROM alerts_secrets s WHERE s.name = 'unsubscribe');
    target_user bigint;
    target_channel text;
    opted_out_at timestamptz;
    added integer;
BEGIN
    IF stored_secret IS NULL THEN
        RETURN jsonb_build_object('ok', false, 'reason',
            'no unsubscribe secret: run runner.py --migrate with ALERTS_UNSUBSCRIBE_SECRET set');
    END IF;
    IF token IS NULL OR length(token) > 200 OR cardinality(parts) <> 3
       OR parts[1] !~ '^[1-9][0-9]{0,17}$' OR parts[2] NOT IN ('email', 'telegram', 'sms')
       OR parts[3] !~ '^[A-Za-z0-9_-]{43}$' THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'malformed token');
    END IF;
    target_user := parts[1]::bigint;
    target_channel := parts[2];
    IF sha256(convert_to(alerts_unsubscribe_signature(stored_secret, target_user, target_channel), 'UTF8'))
       <> sha256(convert_to(parts[3], 'UTF8')) THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'bad signature');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = target_user) THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'unknown user');
    END IF;
    INSERT INTO alerts_channel_optouts (user_id, channel, source)
    VALUES (target_user, target_channel, 'one-click unsubscribe')
    ON CONFLICT (user_id, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    SELECT o.since INTO opted_out_at
      FROM alerts_channel_optouts o WHERE o.user_id = target_user AND o.channel = target_channel;
    RETURN jsonb_build_object('ok', true, 'user_id', target_user, 'channel', target_channel,
                              'changed', added > 0, 'unsubscribed_since', opted_out_at);
END;
$$;
COMMENT ON FUNCTION alerts_unsubscribe(text) IS
    'One-click unsubscribe: checks the token''s signature and turns that user''s alerts on its channel off; idempotent. Returns {"ok": true, "user_id", "channel", "changed", "unsubscribed_since"} or {"ok": false, "reason"}. For the host''s web route (role alerts_host). Example: SELECT alerts_unsubscribe(''42.email.Xb3...'');';

CREATE OR REPLACE FUNCTION alerts_resubscribe(user_id bigint, channel text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: the user's opt-out of the channel is gone afterwards (the host calls it when the
-- user turns the channel's alerts back on); says whether there was one. Lock: the opt-out row.
#variable_conflict use_variable
DECLARE
    removed integer;
BEGIN
    DELETE FROM alerts_channel_optouts o WHERE o.user_id = user_id AND o.channel = channel;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN jsonb_build_object('user_id', user_id, 'channel', channel, 'changed', removed > 0);
END;
$$;
COMMENT ON FUNCTION alerts_resubscribe(bigint, text) IS
    'Turns a user''s alerts on a channel back on after an unsubscribe (role alerts_host). Example: SELECT alerts_resubscribe(42, ''email'');';
