-- A claimed delivery that will never be sent ends failed or skipped (fenced by its claim token).

-- The one UPDATE behind mark_deliveries_failed() and mark_deliveries_skipped(); not for callers.
CREATE OR REPLACE FUNCTION alerts_finish_deliveries(final_status text, caller text, ids bigint[],
                                                    claim_tokens bigint[], details text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: sending -> final_status ('failed' or 'skipped', for ever) with the detail in
-- last_error, only for rows still carrying the caller's claim_token; other rows untouched.
-- A failed row without a detail says so (the table requires its error). Lock: row locks of the UPDATE.
DECLARE
    changed integer;
BEGIN
    IF final_status IS NULL OR final_status NOT IN ('failed', 'skipped') THEN
        RAISE EXCEPTION 'alerts_finish_deliveries: final_status must be failed or skipped, got %',
            coalesce(final_status, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM alerts_check_claim_tokens(caller, ids, claim_tokens);
    UPDATE user_alert_deliveries d
       SET status = final_status,
           last_error = left(CASE WHEN final_status = 'failed' THEN coalesce(o.detail, 'failed without a reason')
                                  ELSE o.detail END, 2000),
           next_retry_at = NULL, lease_expires_at = NULL
      FROM unnest(ids, claim_tokens, details) AS o (id, claim_token, detail)
     WHERE d.id = ANY (ids) AND d.id = o.id AND d.claim_token = o.claim_token AND d.status = 'sending';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION alerts_finish_deliveries(text, text, bigint[], bigint[], text[]) IS
    'Internal: finishes claimed (sending) deliveries as failed or skipped, where they still carry the given claim tokens; call mark_deliveries_failed() or mark_deliveries_skipped(). Example: SELECT alerts_finish_deliveries(''skipped'', ''psql'', ARRAY[42], ARRAY[17], ARRAY[''invalid phone number'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_failed(ids bigint[], claim_tokens bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> failed (permanent) with last_error, only for rows still carrying the
-- caller's claim_token; other rows untouched. Lock: row locks of the UPDATE.
    SELECT alerts_finish_deliveries('failed', 'mark_deliveries_failed', ids, claim_tokens, errors)
$$;
COMMENT ON FUNCTION mark_deliveries_failed(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries permanently failed with their errors, where they still carry the given claim tokens. Example: SELECT mark_deliveries_failed(ARRAY[42], ARRAY[17], ARRAY[''550 no such user'']);';

CREATE OR REPLACE FUNCTION mark_deliveries_skipped(ids bigint[], claim_tokens bigint[], reasons text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> skipped (will never be sent) with the reason in last_error, only for
-- rows still carrying the caller's claim_token. Lock: row locks of the UPDATE.
    SELECT alerts_finish_deliveries('skipped', 'mark_deliveries_skipped', ids, claim_tokens, reasons)
$$;
COMMENT ON FUNCTION mark_deliveries_skipped(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries skipped, e.g. an invalid destination, where they still carry the given claim tokens. Example: SELECT mark_deliveries_skipped(ARRAY[42], ARRAY[17], ARRAY[''invalid phone number'']);';
