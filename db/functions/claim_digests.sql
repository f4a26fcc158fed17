-- Sending digests: the same life cycle as a delivery (claim with SKIP LOCKED and a lease,
-- then exactly one outcome), for one alert_digests row standing for all its member
-- deliveries. The members stay 'queued' while their digest is in flight and take its final
-- status, sent_at and provider message id in the same statement as the digest.

CREATE OR REPLACE FUNCTION claim_digests(batch integer, channels text[] DEFAULT NULL)
RETURNS TABLE (
    digest_id bigint,
    claim_token bigint,
    user_id bigint,
    channel text,
    destination text,
    attempts integer,
    period text,
    window_start timestamptz,
    items jsonb
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET jit = off
AS $$
-- Guarantees: each due queued digest is handed to exactly one caller, earliest due first,
-- as 'sending' with attempts + 1, a lease and a new random 64-bit claim_token (the fencing token
-- its outcome must name, not guessable from other claims), with its member events (most severe
-- first); at most alerts_config.max_claim_batch digests a call (a bigger batch is refused).
-- Lock: row locks only (FOR UPDATE SKIP LOCKED).
#variable_conflict use_column
DECLARE
    lease interval := (SELECT c.lease_duration FROM alerts_config c);
    -- 64 random bits (the first 48 of one v4 UUID, 16 of another), not a sequence: a caller of
    -- the outcome functions cannot guess the token of another runner's claim.
    token bigint := ('x' || left(replace(gen_random_uuid()::text, '-', ''), 12)
                         || left(replace(gen_random_uuid()::text, '-', ''), 4))::bit(64)::bigint;
    -- Read through to_jsonb: the digests change comes before least_privilege, which adds the column,
    -- in the plan, so this works in between too (and after a revert of least_privilege alone).
    max_batch integer := coalesce((SELECT (to_jsonb(c) ->> 'max_claim_batch')::integer FROM alerts_config c), 10000);
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'claim_digests: batch must be a positive integer, got %', coalesce(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch > max_batch THEN
        RAISE EXCEPTION 'claim_digests: batch % is above alerts_config.max_claim_batch (%): claim at most % rows a call',
            batch, max_batch, max_batch USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH due_digests AS (
        SELECT g.id
          FROM alert_digests g
         WHERE g.status = 'queued'
           AND coalesce(g.next_retry_at, g.created_at) <= now()
           AND (channels IS NULL OR g.channel = ANY (channels))
         ORDER BY coalesce(g.next_retry_at, g.created_at), g.id
         LIMIT batch
           FOR UPDATE SKIP LOCKED
    ),
    claimed_digests AS (
        UPDATE alert_digests g
           SET status = 'sending', attempts = g.attempts + 1, claim_token = token,
               claimed_at = now(), lease_expires_at = now() + coalesce(lease, interval '5 minutes')
         WHERE g.id = ANY (ARRAY(SELECT due.id FROM due_digests due))  -- by primary key, whatever the estimates
           AND g.status = 'queued'
        RETURNING g.id, g.user_id, g.channel, g.attempts, g.period, g.window_start,
                  coalesce(g.next_retry_at, g.created_at) AS due_at
    )
    SELECT cg.id, token, cg.user_id::bigint, cg.channel,
           alerts_user_destination(u, cg.channel) AS destination,
           cg.attempts, cg.period, cg.window_start,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'delivery_id', d.id, 'alert_event_id', ae.id, 'alert_type', ae.alert_type,
                                'severity', ae.severity, 'region', ae.scope_region, 'headline', ae.headline)
                            ORDER BY ae.severity DESC, ae.created_at, ae.id)
                       FROM user_alert_deliveries d
                       JOIN alert_events ae ON ae.id = d.alert_event_id
                      WHERE d.digest_id = cg.id AND d.status = 'queued'), '[]'::jsonb)
      FROM claimed_digests cg
      LEFT JOIN users u ON u.id = cg.user_id
     ORDER BY cg.due_at, cg.id;
END;
$$;
COMMENT ON FUNCTION claim_digests(integer, text[]) IS
    'Claims up to batch due digests (FOR UPDATE SKIP LOCKED) of the given channels (NULL: all), marks them sending with a fencing claim_token, and returns each with its member events. Record the outcome with record_digest_outcomes, passing the claim_token. Example: SELECT * FROM claim_digests(10);';
