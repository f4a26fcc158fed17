-- Deploy alerts_v2:digests@v1.1 (the version tagged v1.1; reworked since, so its included
-- files are inlined as they were then; revert/digests.sql restores them)
-- Digest delivery (Phase D): users whose pref or plan says "digest" get one message per
-- channel and period window listing its events, instead of one message per event.
BEGIN;
SET LOCAL lock_timeout = '5s';

ALTER TABLE alerts_config
    ADD COLUMN IF NOT EXISTS digest_period text NOT NULL DEFAULT 'daily'
        CONSTRAINT alerts_config_digest_period_check CHECK (digest_period IN ('daily', 'hourly')),
    ADD COLUMN IF NOT EXISTS digest_grace interval NOT NULL DEFAULT '5 minutes'
        CONSTRAINT alerts_config_digest_grace_check CHECK (digest_grace >= interval '0');

CREATE TABLE IF NOT EXISTS alert_digests (
    id bigserial PRIMARY KEY,
    digest_key text NOT NULL,
    user_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'telegram', 'sms')),
    period text NOT NULL CHECK (period IN ('daily', 'hourly')),
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_retry_at timestamptz,
    last_error text,
    sent_at timestamptz,
    provider_message_id text,
    claimed_at timestamptz,
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_digests_digest_key_key UNIQUE (digest_key),
    CONSTRAINT alert_digests_window_order CHECK (window_end > window_start),
    CONSTRAINT alert_digests_sent_has_sent_at CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT alert_digests_failed_has_error CHECK (status <> 'failed' OR last_error IS NOT NULL),
    CONSTRAINT alert_digests_sending_was_attempted CHECK (status <> 'sending' OR attempts > 0),
    CONSTRAINT alert_digests_sending_has_lease CHECK ((status = 'sending') = (lease_expires_at IS NOT NULL))
) WITH (fillfactor = 80);
-- At most one digest per window is open for new members at a time.
CREATE UNIQUE INDEX IF NOT EXISTS alert_digests_one_queued_per_window_idx
    ON alert_digests (user_id, channel, period, window_start) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS alert_digests_queued_idx
    ON alert_digests ((coalesce(next_retry_at, created_at)), id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS alert_digests_sending_idx
    ON alert_digests (lease_expires_at) WHERE status = 'sending';

-- A digest delivery points at its digest. The column is added bare (no table rewrite, no
-- scan); its foreign key and CHECK are added NOT VALID here and validated, without blocking
-- writes, by digests_indexes, which also builds its indexes CONCURRENTLY.
ALTER TABLE user_alert_deliveries ADD COLUMN IF NOT EXISTS digest_id bigint;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'user_alert_deliveries_digest_id_fkey') THEN
        ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_digest_id_fkey
            FOREIGN KEY (digest_id) REFERENCES alert_digests (id) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'user_alert_deliveries_digest_only_for_digests') THEN
        ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_digest_only_for_digests
            CHECK (digest_id IS NULL OR delivery_kind = 'digest') NOT VALID;
    END IF;
END
$$;

-- db/functions/phase_d_digests.sql as it was at @v1.1 (frozen copy).
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
-- Lock: pg_try_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_d')).
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

    UPDATE user_alert_deliveries d
       SET digest_id = g.id
      FROM alert_digests g
     WHERE d.delivery_kind = 'digest' AND d.status = 'queued' AND d.digest_id IS NULL
       AND d.created_at < date_trunc(unit, now() - cfg.digest_grace)
       AND g.status = 'queued' AND g.user_id = d.user_id AND g.channel = d.channel
       AND g.period = cfg.digest_period AND g.window_start = date_trunc(unit, d.created_at);
    GET DIAGNOSTICS members_attached = ROW_COUNT;

    RETURN jsonb_build_object('phase', 'd', 'locked', true, 'skipped', false, 'period', cfg.digest_period,
                              'digests_created', digests_created, 'deliveries_digested', members_attached);
END;
$$;
COMMENT ON FUNCTION alerts_phase_d() IS
    'Phase D: gathers queued digest deliveries of closed windows into one alert_digests row per user, channel and window. Returns jsonb counts, or the skip object when another session runs Phase D. Example: SELECT alerts_phase_d();';
-- Runnable over the later version too (as when Sqitch follows runner.py --migrate), whose claim
-- returns one more column: CREATE OR REPLACE cannot change a result type.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_digests(integer, text[]);
-- db/functions/digest_delivery.sql as it was at @v1.1 (frozen copy).
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

REVOKE ALL ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], text[]), reclaim_expired_digests() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], text[]), reclaim_expired_digests() TO alerts_runner;
GRANT SELECT ON alert_digests TO alerts_readonly;
GRANT EXECUTE ON FUNCTION count_due_digests(integer, text[]) TO alerts_readonly;
COMMIT;
