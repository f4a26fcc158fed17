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
