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
