-- One component (a region or an asset) of an alert event fingerprint, with the separator
-- escaped: '\' becomes '\\' and ':' becomes '\:'. Two different (region, asset) pairs then never
-- share a fingerprint ('Europe:oil' with 'gas' against 'Europe' with 'oil:gas'), and a name with
-- neither character is unchanged, so fingerprints already stored stay valid. Every place that
-- builds a spike fingerprint (Phase A, the legacy upgrade's backfill) must use it.
-- Plain SQL, IMMUTABLE, no SET clause: the planner inlines it into the calling query.
CREATE OR REPLACE FUNCTION alerts_fingerprint_part(name text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT pg_catalog.replace(pg_catalog.replace($1, '\', '\\'), ':', '\:');
$$;
COMMENT ON FUNCTION alerts_fingerprint_part(text) IS
    'A region or asset escaped for an alert event fingerprint (\ and : get a backslash); names without them are unchanged. Example: SELECT alerts_fingerprint_part(''Europe:oil'');';
