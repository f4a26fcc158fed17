-- Deploy alerts_v2:digests@v1.2 (the version tagged v1.2; reworked since, so its included
-- files are inlined as they were then; revert/digests.sql restores them)
-- waits for its window is merged into it; Phase D never attaches a member to a digest in flight)
-- The tables are those of digests@v1.1; this version replaces its functions.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_digests(integer, text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS record_digest_outcomes(text, bigint[], text[]);
-- db/functions/phase_d_digests.sql as it was at @v1.2 (frozen copy).
-- Phase D: queued digest deliveries are gathered, per user, channel and period window
-- (alerts_config.digest_period, UTC), into one alert_digests row each, once the window
-- has closed (plus digest_grace, so a Phase B still committing into it is not cut off).
-- Lock: alerts_v2_phase_d, transaction-scoped.
CREATE OR REPLACE FUNCTION alerts_phase_d()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET jit = off
AS $$
-- Guarantees: one digest per digest_key ({user}:{channel}:{period}:{window start}), and at
-- most one queued digest per (user, channel, period, window) (UNIQUE indexes); every closed
-- queued digest delivery joins exactly one digest; a second run creates nothing.
-- Members that arrive after their window's digest was sent get a digest of their own,
-- keyed {digest_key}:late:{time}, so none is lost.
-- Lock: pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_d')); row locks (FOR SHARE) on the open digests.
DECLARE
    cfg alerts_config;
    unit text;
    digests_created bigint;
    members_attached bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_d')) THEN
        RETURN alerts_lock_skipped('d');
    END IF;
    cfg := alerts_settings();
    unit := CASE cfg.digest_period WHEN 'hourly' THEN 'hour' ELSE 'day' END;

    WITH closed_windows AS (
        SELECT DISTINCT d.user_id, d.channel, date_trunc(unit, d.created_at) AS window_start
          FROM user_alert_deliveries d
         WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
           AND d.created_at < date_trunc(unit, now() - cfg.digest_grace)
    ),
    keyed_windows AS (
        SELECT cw.*, format('%s:%s:%s:%s', cw.user_id, cw.channel, cfg.digest_period,
                            to_char(cw.window_start, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS base_key
          FROM closed_windows cw
    ),
    new_digests AS (
        INSERT INTO alert_digests (digest_key, user_id, channel, period, window_start, window_end)
        SELECT CASE WHEN EXISTS (SELECT 1 FROM alert_digests g WHERE g.digest_key = kw.base_key)
                    THEN kw.base_key || ':late:' || to_char(now(), 'YYYYMMDD"T"HH24MISS.US')
                    ELSE kw.base_key END,
               kw.user_id, kw.channel, cfg.digest_period, kw.window_start,
               kw.window_start + ('1 ' || unit)::interval
          FROM keyed_windows kw
         WHERE NOT EXISTS (SELECT 1 FROM alert_digests g
                            WHERE g.user_id = kw.user_id AND g.channel = kw.channel AND g.period = cfg.digest_period
                              AND g.window_start = kw.window_start AND g.status = 'queued')
        ON CONFLICT DO NOTHING
        RETURNING id
    )
    SELECT count(*) INTO digests_created FROM new_digests;

    -- The open digests are locked FOR SHARE: one a sender claims meanwhile is 'sending' by the
    -- time the lock is granted, drops out here and gets no member its message did not list.
    WITH open_digests AS (
        SELECT g.id, g.user_id, g.channel, g.window_start
          FROM alert_digests g
         WHERE g.status = 'queued' AND g.period = cfg.digest_period
           AND (g.user_id, g.channel, g.window_start) IN (
                   SELECT d.user_id, d.channel, date_trunc(unit, d.created_at)
                     FROM user_alert_deliveries d
                    WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
                      AND d.created_at < date_trunc(unit, now() - cfg.digest_grace))
           FOR SHARE
    )
    UPDATE user_alert_deliveries d
       SET digest_id = od.id
      FROM open_digests od
     WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
       AND d.created_at < date_trunc(unit, now() - cfg.digest_grace)
       AND od.user_id = d.user_id AND od.channel = d.channel
       AND od.window_start = date_trunc(unit, d.created_at);
    GET DIAGNOSTICS members_attached = ROW_COUNT;

    RETURN jsonb_build_object('phase', 'd', 'locked', true, 'skipped', false, 'period', cfg.digest_period,
                              'digests_created', digests_created, 'deliveries_digested', members_attached);
END;
$$;
COMMENT ON FUNCTION alerts_phase_d() IS
    'Phase D: gathers queued digest deliveries of closed windows into one alert_digests row per user, channel and window. Returns jsonb counts, or the skip object when another session runs Phase D. Example: SELECT alerts_phase_d();';
-- db/functions/claim_digests.sql as it was at @v1.2 (frozen copy).
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
-- as 'sending' with attempts + 1, a lease and a new claim_token (the fencing token its outcome
-- must name), with its member events (most severe first).
-- Lock: row locks only (FOR UPDATE SKIP LOCKED).
#variable_conflict use_column
DECLARE
    lease interval := (SELECT c.lease_duration FROM alerts_config c);
    token bigint := nextval('alerts_claim_token_seq');
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
-- db/functions/requeue_digests.sql as it was at @v1.2 (frozen copy).
-- Puts digests a sender gives back (a transient failure, a release, an expired lease) in
-- the queue again; the one place where a digest returns to 'queued'.
CREATE OR REPLACE FUNCTION alerts_requeue_digests(ids bigint[], claim_tokens bigint[], errors text[],
                                                  releasing boolean)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: only digests still 'sending' under the given claim tokens change. Released ones
-- go back due at once with their attempt given back; the others with a backoff, or 'failed'
-- (with their queued members) once max_attempts is reached. A window never ends up with two
-- queued digests (alert_digests_one_queued_per_window_idx): a digest returning to a window
-- that has a queued digest already (Phase D opened one for a late member meanwhile) hands its
-- queued members to that digest and becomes 'skipped', "merged into digest N"; so no member is
-- lost and one failing digest never blocks the others. Lock: row locks of the UPDATEs; a
-- digest queued concurrently by Phase D shows up as a unique violation, and the merge is
-- tried again with it visible.
DECLARE
    cfg alerts_config := alerts_settings();
    merged integer := 0;
    requeued integer := 0;
    failed integer := 0;
BEGIN
    PERFORM alerts_check_claim_tokens('record_digest_outcomes', ids, claim_tokens);
    FOR merge_round IN 1..3 LOOP
        BEGIN
            WITH returning_digests AS (
                SELECT g.id, g.user_id, g.channel, g.period, g.window_start
                  FROM alert_digests g
                  JOIN unnest(ids, claim_tokens) AS o (id, claim_token)
                    ON g.id = o.id AND g.claim_token = o.claim_token
                 WHERE g.status = 'sending' AND (releasing OR g.attempts < cfg.max_attempts)
                   FOR UPDATE OF g
            ),
            window_targets AS (
                SELECT rd.id AS returning_id,
                       coalesce((SELECT q.id FROM alert_digests q
                                  WHERE q.user_id = rd.user_id AND q.channel = rd.channel AND q.period = rd.period
                                    AND q.window_start = rd.window_start AND q.status = 'queued'
                                  LIMIT 1),
                                min(rd.id) OVER (PARTITION BY rd.user_id, rd.channel, rd.period, rd.window_start))
                           AS target_id
                  FROM returning_digests rd
            ),
            merges AS (
                SELECT wt.returning_id, wt.target_id FROM window_targets wt WHERE wt.target_id <> wt.returning_id
            ),
            moved_members AS (
                UPDATE user_alert_deliveries d
                   SET digest_id = m.target_id
                  FROM merges m
                 WHERE d.digest_id = m.returning_id AND d.status = 'queued'
                RETURNING d.id
            ),
            merged_digests AS (
                UPDATE alert_digests g
                   SET status = 'skipped', lease_expires_at = NULL, next_retry_at = NULL,
                       last_error = format('merged into digest %s, queued for the same window', m.target_id)
                  FROM merges m
                 WHERE g.id = m.returning_id
                RETURNING g.id
            )
            SELECT count(*) INTO merged FROM merged_digests;

            WITH outcomes AS (
                SELECT o.id, o.claim_token, left(coalesce(o.error, 'transient failure'), 1900) AS error
                  FROM unnest(ids, claim_tokens, errors) AS o (id, claim_token, error)
            ),
            returned_digests AS (
                UPDATE alert_digests g
                   SET status = CASE WHEN releasing OR g.attempts < cfg.max_attempts THEN 'queued' ELSE 'failed' END,
                       attempts = CASE WHEN releasing THEN greatest(g.attempts - 1, 0) ELSE g.attempts END,
                       last_error = CASE
                                        WHEN releasing THEN g.last_error
                                        WHEN g.attempts >= cfg.max_attempts
                                            THEN format('gave up after %s attempts: %s', g.attempts, o.error)
                                        ELSE o.error
                                    END,
                       next_retry_at = CASE WHEN NOT releasing AND g.attempts < cfg.max_attempts
                                            THEN now() + alerts_retry_delay(g.attempts) END,
                       lease_expires_at = NULL
                  FROM outcomes o
                 WHERE g.id = o.id AND g.claim_token = o.claim_token AND g.status = 'sending'
                RETURNING g.id, g.status, g.attempts, g.last_error
            ),
            failed_members AS (
                UPDATE user_alert_deliveries d
                   SET status = 'failed', attempts = rd.attempts, last_error = rd.last_error
                  FROM returned_digests rd
                 WHERE d.digest_id = rd.id AND d.status = 'queued' AND rd.status = 'failed'
                RETURNING d.id
            )
            SELECT count(*) FILTER (WHERE rd.status = 'queued'), count(*) FILTER (WHERE rd.status = 'failed')
              INTO requeued, failed
              FROM returned_digests rd;
            RETURN jsonb_build_object('requeued', requeued, 'failed', failed, 'merged', merged);
        EXCEPTION WHEN unique_violation THEN
            IF merge_round = 3 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    RETURN NULL;  -- not reached
END;
$$;
COMMENT ON FUNCTION alerts_requeue_digests(bigint[], bigint[], text[], boolean) IS
    'Internal to record_digest_outcomes and reclaim_expired_digests: puts claimed digests back in the queue (releasing: at once, attempt given back), merging one into a digest already queued for its window. Example: SELECT alerts_requeue_digests(ARRAY[7], ARRAY[17], ARRAY[''timeout''], false);';
-- db/functions/record_digest_outcomes.sql as it was at @v1.2 (frozen copy).
-- What a sender did with the digests it claimed, for the digest and its member deliveries alike.

CREATE OR REPLACE FUNCTION record_digest_outcomes(outcome text, ids bigint[], claim_tokens bigint[],
                                                  details text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: changes only digests still carrying the caller's claim_token. outcome 'sent'
-- (details: provider ids) finishes a digest that is 'sending', or that was put back after its
-- lease expired and not claimed since, and its queued members alike; 'failed' or 'skipped'
-- (details: reasons) finish a 'sending' digest and its members; 'requeue' (details: errors)
-- and 'release' put it back as alerts_requeue_digests() says. Lock: row locks of the UPDATEs.
DECLARE
    changed integer;
    returned jsonb;
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'failed', 'skipped', 'requeue', 'release') THEN
        RAISE EXCEPTION 'record_digest_outcomes: outcome must be sent, failed, skipped, requeue or release, got %',
            coalesce(outcome, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM alerts_check_claim_tokens('record_digest_outcomes', ids, claim_tokens);
    IF outcome IN ('requeue', 'release') THEN
        returned := alerts_requeue_digests(ids, claim_tokens, details, outcome = 'release');
        RETURN (returned ->> 'requeued')::integer + (returned ->> 'failed')::integer
               + (returned ->> 'merged')::integer;
    END IF;
    WITH outcomes AS (
        SELECT o.id, o.claim_token, left(o.detail, 1900) AS detail
          FROM unnest(ids, claim_tokens, details) AS o (id, claim_token, detail)
    ),
    finished_digests AS (
        UPDATE alert_digests g
           SET status = outcome,
               sent_at = CASE WHEN outcome = 'sent' THEN now() END,
               provider_message_id = CASE WHEN outcome = 'sent' THEN o.detail ELSE g.provider_message_id END,
               last_error = CASE WHEN outcome = 'sent' THEN NULL
                                 ELSE coalesce(o.detail, outcome || ' without a reason') END,
               next_retry_at = NULL, lease_expires_at = NULL
          FROM outcomes o
         WHERE g.id = o.id AND g.claim_token = o.claim_token
           AND (g.status = 'sending' OR (outcome = 'sent' AND g.status IN ('queued', 'failed')))
        RETURNING g.id, g.status, g.attempts, g.sent_at, g.provider_message_id, g.last_error
    ),
    finished_members AS (
        UPDATE user_alert_deliveries d
           SET status = fd.status, attempts = fd.attempts, sent_at = fd.sent_at,
               provider_message_id = fd.provider_message_id, last_error = fd.last_error
          FROM finished_digests fd
         WHERE d.digest_id = fd.id AND d.status IN ('queued', 'failed')
           AND (fd.status = 'sent' OR d.status = 'queued')
        RETURNING d.id
    )
    SELECT count(*) INTO changed FROM finished_digests;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION record_digest_outcomes(text, bigint[], bigint[], text[]) IS
    'Records what a sender did with claimed digests: sent, failed, skipped, requeue or release, for digests still carrying the given claim tokens; a final outcome also finishes the digest''s member deliveries. Example: SELECT record_digest_outcomes(''sent'', ARRAY[7], ARRAY[17], ARRAY[''msg-1'']);';
-- db/functions/reclaim_expired_digests.sql as it was at @v1.2 (frozen copy).
-- Digests left sending past their lease go back to the queue (or fail once their attempts are spent).

CREATE OR REPLACE FUNCTION reclaim_expired_digests()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: as reclaim_expired_deliveries(), for digests: only digests still 'sending' past
-- their lease, re-checked (with their claim token) by alerts_requeue_digests(), which merges a
-- digest into one already queued for its window instead of failing on it; a digest failed here
-- fails its queued members too. Lock: row locks of the UPDATEs.
DECLARE
    expired_ids bigint[];
    expired_tokens bigint[];
    expired_errors text[];
BEGIN
    SELECT coalesce(array_agg(g.id ORDER BY g.id), '{}'), coalesce(array_agg(g.claim_token ORDER BY g.id), '{}'),
           coalesce(array_agg(format('lease expired at %s during attempt %s (the sender stopped without recording an outcome)',
                                     g.lease_expires_at, g.attempts) ORDER BY g.id), '{}')
      INTO expired_ids, expired_tokens, expired_errors
      FROM alert_digests g
     WHERE g.status = 'sending' AND g.lease_expires_at < now();
    RETURN alerts_requeue_digests(expired_ids, expired_tokens, expired_errors, false);
END;
$$;
COMMENT ON FUNCTION reclaim_expired_digests() IS
    'Returns digests stuck in sending past their lease to the queue (with backoff), or fails them and their members once their attempts are spent. Example: SELECT reclaim_expired_digests();';
-- db/functions/count_due_digests.sql as it was at @v1.2 (frozen copy).
-- What a digest claim would take now, without taking it.

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
REVOKE ALL ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    alerts_requeue_digests(bigint[], bigint[], text[], boolean),
    record_digest_outcomes(text, bigint[], bigint[], text[]), reclaim_expired_digests() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], bigint[], text[]), reclaim_expired_digests() TO alerts_runner;
GRANT EXECUTE ON FUNCTION count_due_digests(integer, text[]) TO alerts_readonly;
COMMIT;
