-- Recording what a sender did with the deliveries it claimed. Every function is fenced:
-- it changes a row only while the row still carries the claim_token of the caller's claim
-- (re-checked by the UPDATE itself), so a sender whose lease expired, and whose rows were
-- reclaimed and claimed again by another sender, can never overwrite the newer claim.
-- Each returns the number of rows it changed; the caller counts the rest as stale.
-- ids[i] goes with claim_tokens[i] and with the i-th detail.

-- The one check every outcome function makes of its arguments.
CREATE OR REPLACE FUNCTION alerts_check_claim_tokens(caller text, ids bigint[], claim_tokens bigint[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF claim_tokens IS NULL OR cardinality(claim_tokens) <> cardinality(ids) THEN
        RAISE EXCEPTION '%: pass one claim_token per id (the claim_token column the claim returned), got % ids and % tokens',
            caller, cardinality(ids), coalesce(cardinality(claim_tokens)::text, 'no')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION alerts_check_claim_tokens(text, bigint[], bigint[]) IS
    'Raises unless there is one claim token per id. Example: SELECT alerts_check_claim_tokens(''release_deliveries'', ARRAY[42], ARRAY[17]);';
