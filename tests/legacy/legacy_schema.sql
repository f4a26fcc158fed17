-- The pre-v2 ("v1") alerts database, as the production database runs it before the
-- upgrade: the host's tables, and the first version of alert_events and
-- user_alert_deliveries that the v2 migrations adopt and upgrade in place.
--
-- What v1 differs in (each one is something the upgrade must handle):
--   alert_events
--     * no event_fingerprint, no fanout_completed_at;
--     * v1's dedupe key, cooldown_key = {type}:{region}[:{asset}]:{hour of the run}, UNIQUE
--       and NOT NULL: overlapping runs on either side of an hour boundary slipped through
--       it, hence the duplicate events (same type, region and day) in the data;
--     * created_at is timestamp without time zone (UTC), indexed.
--   user_alert_deliveries
--     * no delivery_kind, attempts, next_retry_at, last_error, claimed_at, lease_expires_at;
--     * statuses pending (v1.0's queued), queued, sending, sent, delivered (provider
--       confirmed), failed, bounced; default 'pending'; no CHECK;
--     * created_at, sent_at and the v1-only opened_at are timestamp without time zone;
--     * UNIQUE INDEX on (user_id, alert_event_id, channel), which the v1 application's
--       INSERT ... ON CONFLICT (user_id, alert_event_id, channel) DO NOTHING relies on;
--     * a foreign key to alert_events without ON DELETE CASCADE;
--     * an index on (status, created_at) for v1's sender.
--   users has a v1-only column (locale) and timestamp without time zone.

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text,
    email_verified boolean,
    telegram_chat_id text,
    phone_number text,
    locale text NOT NULL DEFAULT 'en',
    created_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE user_plans (
    user_id bigint NOT NULL UNIQUE,
    plan text NOT NULL DEFAULT 'free'
);

CREATE TABLE plan_settings (
    plan_code text NOT NULL UNIQUE,
    allowed_alert_types text[] NOT NULL DEFAULT '{}',
    max_email_alerts_per_day integer,
    delivery_config jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE user_alert_prefs (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL,
    alert_type text NOT NULL,
    region text NOT NULL DEFAULT 'global',
    asset text,
    threshold integer,
    enabled boolean NOT NULL DEFAULT true,
    delivery_mode text
);

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    title text,
    region text,
    category text,
    severity_score integer,
    inserted_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE risk_indices (
    id bigserial PRIMARY KEY,
    region text,
    window_days integer,
    risk_score numeric,
    trend text,
    calculated_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE asset_risk (
    id bigserial PRIMARY KEY,
    asset text,
    region text,
    window_days integer,
    risk_score numeric,
    direction text,
    calculated_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE alert_events (
    id bigserial PRIMARY KEY,
    alert_type text NOT NULL,
    scope_region text NOT NULL,
    scope_assets text[] NOT NULL DEFAULT '{}',
    severity integer NOT NULL,
    headline text NOT NULL,
    body text NOT NULL DEFAULT '',
    driver_event_ids bigint[] NOT NULL DEFAULT '{}',
    cooldown_key text NOT NULL,
    created_at timestamp without time zone NOT NULL DEFAULT now(),
    CONSTRAINT alert_events_cooldown_key_key UNIQUE (cooldown_key)
);
CREATE INDEX alert_events_created_at_idx ON alert_events (created_at);

CREATE TABLE user_alert_deliveries (
    id bigserial PRIMARY KEY,
    alert_event_id bigint NOT NULL REFERENCES alert_events (id),
    user_id bigint NOT NULL,
    channel text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    sent_at timestamp without time zone,
    provider_message_id text,
    opened_at timestamp without time zone,
    created_at timestamp without time zone NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX user_alert_deliveries_user_event_channel_uidx
    ON user_alert_deliveries (user_id, alert_event_id, channel);
CREATE INDEX user_alert_deliveries_status_created_idx ON user_alert_deliveries (status, created_at);
