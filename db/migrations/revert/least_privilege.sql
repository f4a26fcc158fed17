-- Revert alerts_v2:least_privilege
-- The helpers get back the default privileges they had (PUBLIC may execute them, no ACL of their
-- own): a GRANT cannot give that back, so they are dropped and created again as they were, from
-- the copies below (frozen, not the live files), and handed to their owner again.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_lock_key(text);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_lock_skipped(text);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_settings();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_user_destination(users, text);
-- db/functions/lock_keys.sql as it was before least_privilege (frozen copy).
-- Advisory lock keys: the same lock name gives the same bigint on every
-- server and in Python (alerts/locks.py). sha256, not md5: md5 is refused on
-- FIPS-enforcing servers.
CREATE OR REPLACE FUNCTION alerts_lock_key(lock_name text)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    -- The first 8 bytes of sha256(lock_name in UTF-8), read as a signed big-endian bigint.
    SELECT ('x' || encode(substring(sha256(convert_to(lock_name, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;
COMMENT ON FUNCTION alerts_lock_key(text) IS
    'Advisory lock key of a lock name: first 8 bytes of sha256(name), signed big-endian. Example: SELECT alerts_lock_key(''alerts_v2_phase_a'');';

-- The object every phase returns when its lock is held elsewhere.
CREATE OR REPLACE FUNCTION alerts_lock_skipped(phase text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT jsonb_build_object('phase', phase, 'locked', false, 'skipped', true, 'reason', 'lock_not_acquired')
$$;
COMMENT ON FUNCTION alerts_lock_skipped(text) IS
    'The JSON a phase returns when its advisory lock is held by another session.';

-- The one row of alerts_config every phase reads, or a clear error when it is missing.
CREATE OR REPLACE FUNCTION alerts_settings()
RETURNS alerts_config
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    cfg alerts_config;
BEGIN
    SELECT * INTO cfg FROM alerts_config;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alerts_config has no row' USING HINT = 'Run the migrations again: they insert the default row.';
    END IF;
    RETURN cfg;
END;
$$;
COMMENT ON FUNCTION alerts_settings() IS
    'The alerts_config row the phases read; raises when it is missing. Example: SELECT * FROM alerts_settings();';
-- db/functions/user_destination.sql as it was before least_privilege (frozen copy).
-- Where a user receives a channel's messages: the one rule the claims share.
CREATE OR REPLACE FUNCTION alerts_user_destination(u users, channel text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT nullif(btrim(CASE channel
                            WHEN 'email' THEN u.email::text
                            WHEN 'telegram' THEN u.telegram_chat_id::text
                            WHEN 'sms' THEN u.phone_number::text
                        END), '')
$$;
COMMENT ON FUNCTION alerts_user_destination(users, text) IS
    'The user''s destination for a channel (email, telegram chat id or phone number), NULL when blank. Example: SELECT alerts_user_destination(u, ''email'') FROM users u;';
SELECT alerts_assign_owner();
ALTER TABLE alerts_config
    DROP CONSTRAINT IF EXISTS alerts_config_max_claim_batch_range,
    DROP CONSTRAINT IF EXISTS alerts_config_min_retention_a_day,
    DROP CONSTRAINT IF EXISTS alerts_config_max_prune_batch_range,
    DROP CONSTRAINT IF EXISTS alerts_config_max_phase_silence_positive,
    DROP COLUMN IF EXISTS max_phase_silence,
    DROP COLUMN IF EXISTS max_claim_batch,
    DROP COLUMN IF EXISTS min_retention,
    DROP COLUMN IF EXISTS max_prune_batch;
COMMIT;
