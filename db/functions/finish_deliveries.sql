-- A claimed delivery that will never be sent ends failed or skipped (fenced by its claim token).

CREATE OR REPLACE FUNCTION mark_deliveries_failed(ids bigint[], claim_tokens bigint[], errors text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: sending -> failed (permanent) with last_error, only for rows still carrying the
-- caller's claim_token; other rows untouched. Lock: row locks of the UPDATE
-- (alerts_record_delivery_outcomes()).
    SELECT alerts_record_delivery_outcomes('mark_deliveries_failed', ids, claim_tokens,
                                           array_fill('failed'::text, ARRAY[coalesce(cardinality(ids), 0)]), errors)
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
-- rows still carrying the caller's claim_token. Lock: row locks of the UPDATE
-- (alerts_record_delivery_outcomes()).
    SELECT alerts_record_delivery_outcomes('mark_deliveries_skipped', ids, claim_tokens,
                                           array_fill('skipped'::text, ARRAY[coalesce(cardinality(ids), 0)]), reasons)
$$;
COMMENT ON FUNCTION mark_deliveries_skipped(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries skipped, e.g. an invalid destination, where they still carry the given claim tokens. Example: SELECT mark_deliveries_skipped(ARRAY[42], ARRAY[17], ARRAY[''invalid phone number'']);';
