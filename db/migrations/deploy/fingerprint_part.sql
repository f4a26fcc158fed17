-- Deploy alerts_v2:fingerprint_part
-- alerts_fingerprint_part(): the escaping of a region or asset inside a spike fingerprint.
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/fingerprint_part.sql
REVOKE ALL ON FUNCTION alerts_fingerprint_part(text) FROM PUBLIC;
SELECT alerts_assign_owner();
COMMIT;
