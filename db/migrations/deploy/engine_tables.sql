-- Deploy alerts_v2:engine_tables
-- The engine's own tables. Their CHECK constraints make illegal states
-- unstorable, whatever code path writes them.
BEGIN;
SET LOCAL lock_timeout = '5s';

-- One row of tunables read by the phase functions. DBAs change it with UPDATE.
CREATE TABLE IF NOT EXISTS alerts_config (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    high_impact_min_severity integer NOT NULL DEFAULT 4 CHECK (high_impact_min_severity BETWEEN 1 AND 5),
    high_impact_lookback interval NOT NULL DEFAULT '24 hours' CHECK (high_impact_lookback > interval '0'),
    spike_window_days integer NOT NULL DEFAULT 7 CHECK (spike_window_days > 0),
    spike_min_score numeric NOT NULL DEFAULT 70 CHECK (spike_min_score BETWEEN 0 AND 100),
    spike_min_rise_pct numeric NOT NULL DEFAULT 20 CHECK (spike_min_rise_pct > 0),
    spike_max_age interval NOT NULL DEFAULT '2 days' CHECK (spike_max_age > interval '0'),
    fanout_lookback interval NOT NULL DEFAULT '7 days' CHECK (fanout_lookback > interval '0'),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    retry_base interval NOT NULL DEFAULT '60 seconds' CHECK (retry_base > interval '0'),
    retry_max interval NOT NULL DEFAULT '1 hour',
    retry_jitter_pct numeric NOT NULL DEFAULT 20 CHECK (retry_jitter_pct BETWEEN 0 AND 100),
    lease_duration interval NOT NULL DEFAULT '5 minutes' CHECK (lease_duration > interval '0'),
    CONSTRAINT alerts_config_retry_max_not_below_base CHECK (retry_max >= retry_base)
);
INSERT INTO alerts_config DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Global alert events: never tied to a user; one row per fingerprint.
CREATE TABLE IF NOT EXISTS alert_events (
    id bigserial PRIMARY KEY,
    alert_type text NOT NULL CHECK (alert_type ~ '^[A-Z][A-Z_]*$'),
    scope_region text NOT NULL,
    scope_assets text[] NOT NULL DEFAULT '{}',
    severity integer NOT NULL CHECK (severity BETWEEN 1 AND 5),
    headline text NOT NULL,
    body text NOT NULL DEFAULT '',
    driver_event_ids bigint[] NOT NULL DEFAULT '{}',
    event_fingerprint text NOT NULL,
    fanout_completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_events_event_fingerprint_key UNIQUE (event_fingerprint),
    CONSTRAINT alert_events_fanout_after_creation CHECK (fanout_completed_at >= created_at)
);
-- One row per (event, user, channel, kind). Updated in place by the sender,
-- hence the fillfactor leaving room for HOT updates.
CREATE TABLE IF NOT EXISTS user_alert_deliveries (
    id bigserial PRIMARY KEY,
    alert_event_id bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    user_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'telegram', 'sms')),
    delivery_kind text NOT NULL DEFAULT 'instant' CHECK (delivery_kind IN ('instant', 'digest')),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_retry_at timestamptz,
    last_error text,
    sent_at timestamptz,
    provider_message_id text,
    claimed_at timestamptz,
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_alert_deliveries_unique_key UNIQUE (alert_event_id, user_id, channel, delivery_kind),
    CONSTRAINT user_alert_deliveries_sent_has_sent_at CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT user_alert_deliveries_failed_has_error CHECK (status <> 'failed' OR last_error IS NOT NULL),
    CONSTRAINT user_alert_deliveries_sending_was_attempted CHECK (status <> 'sending' OR attempts > 0),
    CONSTRAINT user_alert_deliveries_sending_has_lease
        CHECK ((status = 'sending') = (lease_expires_at IS NOT NULL)),
    CONSTRAINT user_alert_deliveries_sending_was_claimed CHECK (status <> 'sending' OR claimed_at IS NOT NULL)
) WITH (fillfactor = 80);

-- Their indexes (the claim queue, leases, failures, quotas, Phase B's work list) are
-- built by the indexes_concurrently change, CONCURRENTLY, so that adopting a large
-- pre-v2 table never blocks its writers.

COMMIT;
