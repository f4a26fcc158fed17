-- Sending digests: the same life cycle as a delivery (claim with SKIP LOCKED and a lease,
-- then exactly one outcome), for one alert_digests row standing for all its member
-- deliveries. The members stay 'queued' while their digest is in flight and take its final
-- status, sent_at and provider message id in the same statement as the digest.

CREATE OR REPLACE FUNCTION claim_digests(batch integer, channels text[] DEFAULT NULL)
RETURNS TABLE (
    digest_id bigint,
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
-- as 'sending' with attempts + 1 and a lease, with its member events (most severe first).
-- Lock: row locks only (FOR UPDATE SKIP LOCKED).
#variable_conflict use_column
DECLARE
    lease interval := (SELECT c.lease_duration FROM alerts_config c);
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'claim_digests: batch must be a positive integer, got %', coalesce(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
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
           SET status = 'sending', attempts = g.attempts + 1,
               claimed_at = now(), lease_expires_at = now() + coalesce(lease, interval '5 minutes')
         WHERE g.id = ANY (ARRAY(SELECT due.id FROM due_digests due))  -- by primary key, whatever the estimates
           AND g.status = 'queued'
        RETURNING g.id, g.user_id, g.channel, g.attempts, g.period, g.window_start,
                  coalesce(g.next_retry_at, g.created_at) AS due_at
    )
    SELECT cg.id, cg.user_id, cg.channel,
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
    'Claims up to batch due digests (FOR UPDATE SKIP LOCKED) of the given channels (NULL: all), marks them sending, and returns each with its member events. Record the outcome with record_digest_outcomes. Example: SELECT * FROM claim_digests(10);';

CREATE OR REPLACE FUNCTION record_digest_outcomes(outcome text, ids bigint[], details text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes only digests still 'sending'. outcome 'sent' (details: provider ids),
-- 'failed' or 'skipped' (details: reasons) finish the digest and its queued members alike;
-- 'requeue' (details: errors) puts it back with a backoff, or fails it and its members
-- once max_attempts is reached; 'release' gives an unsent digest back with its attempt.
-- Lock: row locks of the UPDATEs.
DECLARE
    changed integer;
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'failed', 'skipped', 'requeue', 'release') THEN
        RAISE EXCEPTION 'record_digest_outcomes: outcome must be sent, failed, skipped, requeue or release, got %',
            coalesce(outcome, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH outcomes AS (
        SELECT o.id, left(o.detail, 1900) AS detail FROM unnest(ids, details) AS o (id, detail)
    ),
    finished_digests AS (
        UPDATE alert_digests g
           SET status = CASE
                            WHEN outcome = 'requeue' THEN
                                CASE WHEN g.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END
                            WHEN outcome = 'release' THEN 'queued'
                            ELSE outcome
                        END,
               attempts = CASE WHEN outcome = 'release' THEN greatest(g.attempts - 1, 0) ELSE g.attempts END,
               sent_at = CASE WHEN outcome = 'sent' THEN now() END,
               provider_message_id = CASE WHEN outcome = 'sent' THEN o.detail ELSE g.provider_message_id END,
               last_error = CASE
                                WHEN outcome = 'sent' THEN NULL
                                WHEN outcome = 'release' THEN g.last_error
                                WHEN outcome = 'requeue' AND g.attempts >= c.max_attempts
                                    THEN format('gave up after %s attempts: %s', g.attempts,
                                                coalesce(o.detail, 'transient failure'))
                                ELSE coalesce(o.detail, outcome || ' without a reason')
                            END,
               next_retry_at = CASE WHEN outcome = 'requeue' AND g.attempts < c.max_attempts
                                    THEN now() + alerts_retry_delay(g.attempts) END,
               lease_expires_at = NULL
          FROM outcomes o, alerts_config c
         WHERE g.id = o.id AND g.status = 'sending'
        RETURNING g.id, g.status, g.attempts, g.sent_at, g.provider_message_id, g.last_error
    ),
    finished_members AS (
        UPDATE user_alert_deliveries d
           SET status = fd.status, attempts = fd.attempts, sent_at = fd.sent_at,
               provider_message_id = fd.provider_message_id, last_error = fd.last_error
          FROM finished_digests fd
         WHERE d.digest_id = fd.id AND d.status = 'queued' AND fd.status IN ('sent', 'failed', 'skipped')
        RETURNING d.id
    )
    SELECT count(*) INTO changed FROM finished_digests;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION record_digest_outcomes(text, bigint[], text[]) IS
    'Records what a sender did with claimed digests: sent, failed, skipped, requeue or release; a final outcome also finishes the digest''s member deliveries. Example: SELECT record_digest_outcomes(''sent'', ARRAY[7], ARRAY[''msg-1'']);';

CREATE OR REPLACE FUNCTION reclaim_expired_digests()
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as reclaim_expired_deliveries(), for digests: only rows still 'sending' past
-- their lease, re-checked by the UPDATE; a digest failed here fails its queued members too.
-- Lock: row locks of the UPDATEs.
    WITH reclaimed AS (
        UPDATE alert_digests g
           SET status = CASE WHEN g.attempts >= c.max_attempts THEN 'failed' ELSE 'queued' END,
               last_error = format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                   g.lease_expires_at, g.attempts),
               next_retry_at = CASE WHEN g.attempts >= c.max_attempts THEN NULL
                                    ELSE now() + alerts_retry_delay(g.attempts) END,
               lease_expires_at = NULL
          FROM alerts_config c
         WHERE g.status = 'sending' AND g.lease_expires_at < now()
        RETURNING g.id, g.status, g.attempts, g.last_error
    ),
    failed_members AS (
        UPDATE user_alert_deliveries d
           SET status = 'failed', attempts = r.attempts, last_error = r.last_error
          FROM reclaimed r
         WHERE d.digest_id = r.id AND d.status = 'queued' AND r.status = 'failed'
        RETURNING d.id
    )
    SELECT jsonb_build_object('requeued', count(*) FILTER (WHERE status = 'queued'),
                              'failed', count(*) FILTER (WHERE status = 'failed'))
      FROM reclaimed
$$;
COMMENT ON FUNCTION reclaim_expired_digests() IS
    'Returns digests stuck in sending past their lease to the queue (with backoff), or fails them and their members once their attempts are spent. Example: SELECT reclaim_expired_digests();';

CREATE OR REPLACE FUNCTION count_due_digests(up_to integer DEFAULT NULL, channels text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT count(*)
      FROM (SELECT 1
              FROM alert_digests g
             WHERE g.status = 'queued'
               AND coalesce(g.next_retry_at, g.created_at) <= now()
               AND (channels IS NULL OR g.channel = ANY (channels))
             LIMIT up_to) due
$$;
COMMENT ON FUNCTION count_due_digests(integer, text[]) IS
    'Counts the digests claim_digests would hand out now, of the given channels (NULL: all), stopping at up_to (NULL: no limit). Changes nothing. Example: SELECT count_due_digests();';
