-- Deploy alerts_v2:digests
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

\ir ../../functions/phase_d_digests.sql
\ir ../../functions/digest_delivery.sql

REVOKE ALL ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], text[]), reclaim_expired_digests() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], text[]), reclaim_expired_digests() TO alerts_runner;
GRANT SELECT ON alert_digests TO alerts_readonly;
GRANT EXECUTE ON FUNCTION count_due_digests(integer, text[]) TO alerts_readonly;
COMMIT;
