-- The schema a production energyriskiq-ops database has before Alerts v2: the tables the
-- alerts pipeline reads and writes, built in the order the application's own migrations
-- ran over its history (its startup migrations, run again at every start, only add).
-- Written from reading those migrations; columns and constraints that later code no
-- longer creates stay, as they do in production (integer ids, timestamps without time
-- zone, float scores, the pre-v2 user_plans columns, the alert metadata columns).
SET client_min_messages = warning;

-- 1. Ingestion and risk scoring.
CREATE TABLE events (
    id SERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    source_name TEXT NOT NULL,
    source_url TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL CHECK (category IN ('geopolitical', 'energy', 'supply_chain')),
    region TEXT NOT NULL,
    severity_score INT NOT NULL CHECK (severity_score BETWEEN 1 AND 5),
    event_time TIMESTAMP NULL,
    raw_text TEXT NULL,
    inserted_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_events_inserted_at ON events (inserted_at DESC);
CREATE INDEX idx_events_region ON events (region);
ALTER TABLE events ADD COLUMN classification_reason TEXT NULL;
ALTER TABLE events
    ADD COLUMN processed BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN ai_summary TEXT NULL,
    ADD COLUMN ai_impact_json JSONB NULL,
    ADD COLUMN ai_model TEXT NULL,
    ADD COLUMN ai_processed_at TIMESTAMP NULL,
    ADD COLUMN ai_error TEXT NULL,
    ADD COLUMN ai_attempts INT NOT NULL DEFAULT 0;

CREATE TABLE risk_indices (
    id SERIAL PRIMARY KEY,
    region TEXT NOT NULL,
    window_days INT NOT NULL,
    risk_score FLOAT NOT NULL,
    trend TEXT NOT NULL,
    calculated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_risk_indices_calculated ON risk_indices (calculated_at DESC);
CREATE TABLE asset_risk (
    id SERIAL PRIMARY KEY,
    asset TEXT NOT NULL,
    region TEXT NOT NULL,
    window_days INT NOT NULL,
    risk_score FLOAT NOT NULL,
    direction TEXT NOT NULL,
    calculated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_asset_risk_calculated ON asset_risk (calculated_at DESC);

-- 2. Users and plans, first version (three plans, per-user limits).
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    email TEXT UNIQUE NOT NULL,
    telegram_chat_id TEXT NULL,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_users_email ON users (email);
CREATE TABLE user_plans (
    user_id INT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    plan TEXT NOT NULL CHECK (plan IN ('free', 'trader', 'pro')),
    alerts_delay_minutes INT NOT NULL DEFAULT 0,
    max_alerts_per_day INT NOT NULL DEFAULT 20,
    allow_asset_alerts BOOLEAN NOT NULL DEFAULT FALSE,
    allow_telegram BOOLEAN NOT NULL DEFAULT FALSE,
    daily_digest_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    weekly_digest_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE TABLE user_alert_prefs (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    region TEXT NOT NULL DEFAULT 'Europe',
    alert_type TEXT NOT NULL CHECK (alert_type IN ('REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE', 'HIGH_IMPACT_EVENT', 'DAILY_DIGEST')),
    asset TEXT NULL CHECK (asset IS NULL OR asset IN ('oil', 'gas', 'fx', 'freight')),
    threshold FLOAT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    cooldown_minutes INT NOT NULL DEFAULT 120,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_user_alert_prefs_user ON user_alert_prefs (user_id);
-- The per-user alerts of the first alerts engine.
CREATE TABLE alerts (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_type TEXT NOT NULL,
    region TEXT NOT NULL,
    asset TEXT NULL,
    triggered_value FLOAT NULL,
    threshold FLOAT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'telegram')),
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed', 'skipped')),
    cooldown_key TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT NOW(),
    sent_at TIMESTAMP NULL,
    error TEXT NULL
);

-- 3. Per-user plan limits (later dropped from the code, never from the table), the
--    admin-configurable plan table, five plans.
ALTER TABLE user_plans
    ADD COLUMN plan_price_usd INT NOT NULL DEFAULT 0,
    ADD COLUMN allow_webhooks BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN max_total_alerts_per_day INT NOT NULL DEFAULT 2,
    ADD COLUMN max_email_alerts_per_day INT NOT NULL DEFAULT 1,
    ADD COLUMN max_telegram_alerts_per_day INT NOT NULL DEFAULT 0,
    ADD COLUMN preferred_realtime_channel TEXT NOT NULL DEFAULT 'email',
    ADD COLUMN custom_thresholds BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN priority_processing BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX idx_user_plans_plan ON user_plans (plan);
CREATE TABLE plan_settings (
    plan_code TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    monthly_price_usd NUMERIC(8, 2) NOT NULL,
    allowed_alert_types TEXT[] NOT NULL,
    max_email_alerts_per_day INT NOT NULL,
    delivery_config JSONB NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
ALTER TABLE user_plans DROP CONSTRAINT user_plans_plan_check;
ALTER TABLE user_plans ADD CONSTRAINT user_plans_plan_check
    CHECK (plan IN ('free', 'personal', 'trader', 'pro', 'enterprise'));

-- 4. Accounts: verification, PIN, phone, Telegram linking; the price becomes decimal.
ALTER TABLE users
    ADD COLUMN email_verified BOOLEAN DEFAULT FALSE,
    ADD COLUMN verification_token TEXT,
    ADD COLUMN verification_expires TIMESTAMP,
    ADD COLUMN password_hash TEXT,
    ADD COLUMN pin_hash TEXT,
    ADD COLUMN updated_at TIMESTAMP DEFAULT NOW(),
    ADD COLUMN phone_number VARCHAR(20),
    ADD COLUMN telegram_link_code VARCHAR(20),
    ADD COLUMN telegram_link_expires TIMESTAMP;
CREATE INDEX idx_users_email_verified ON users (email_verified);
ALTER TABLE user_plans ALTER COLUMN plan_price_usd TYPE NUMERIC(10, 2) USING plan_price_usd::NUMERIC(10, 2);

-- 5. The global alerts engine: events, per-user deliveries (channel 'account' = shown
--    in the web account only).
CREATE TABLE alert_events (
    id SERIAL PRIMARY KEY,
    alert_type TEXT NOT NULL CHECK (alert_type IN ('HIGH_IMPACT_EVENT', 'REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE', 'DAILY_DIGEST')),
    scope_region TEXT NULL,
    scope_assets TEXT[] NOT NULL DEFAULT '{}',
    severity INT NOT NULL DEFAULT 3 CHECK (severity BETWEEN 1 AND 5),
    headline TEXT NOT NULL,
    body TEXT NOT NULL,
    driver_event_ids INT[] NULL,
    cooldown_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE TABLE user_alert_deliveries (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_event_id INT NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'telegram', 'sms', 'account')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'skipped', 'failed')),
    reason TEXT NULL,
    provider_message_id TEXT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    sent_at TIMESTAMP NULL
);
CREATE INDEX idx_alert_events_created_at ON alert_events (created_at DESC);
CREATE UNIQUE INDEX uq_alert_events_cooldown_key ON alert_events (cooldown_key);
CREATE INDEX idx_user_alert_deliveries_user_time ON user_alert_deliveries (user_id, created_at DESC);
CREATE UNIQUE INDEX uq_user_alert_deliveries_unique ON user_alert_deliveries (user_id, alert_event_id, channel);
CREATE INDEX idx_user_alert_deliveries_status ON user_alert_deliveries (status);
CREATE INDEX idx_user_alert_deliveries_event ON user_alert_deliveries (alert_event_id);

-- 6. Its safety schema: fingerprints (from the cooldown keys), the fanout marker, retry
--    columns, 'sending', the four-column unique key replacing the three-column one.
ALTER TABLE alert_events ADD COLUMN event_fingerprint TEXT;
ALTER TABLE alert_events ADD COLUMN fanout_completed_at TIMESTAMP NULL;
ALTER TABLE alert_events ALTER COLUMN event_fingerprint SET NOT NULL;
CREATE UNIQUE INDEX uq_alert_events_fingerprint ON alert_events (event_fingerprint);
CREATE INDEX idx_alert_events_fanout_completed ON alert_events (fanout_completed_at);
ALTER TABLE user_alert_deliveries ADD COLUMN delivery_kind TEXT NOT NULL DEFAULT 'instant';
ALTER TABLE user_alert_deliveries ADD COLUMN attempts INT NOT NULL DEFAULT 0;
ALTER TABLE user_alert_deliveries ADD COLUMN next_retry_at TIMESTAMP NULL;
ALTER TABLE user_alert_deliveries ADD COLUMN last_error TEXT NULL;
ALTER TABLE user_alert_deliveries DROP CONSTRAINT user_alert_deliveries_status_check;
ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped'));
DROP INDEX uq_user_alert_deliveries_unique;
CREATE UNIQUE INDEX uq_user_alert_deliveries_full
    ON user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind);
CREATE INDEX idx_user_alert_deliveries_retry ON user_alert_deliveries (next_retry_at) WHERE next_retry_at IS NOT NULL;
CREATE INDEX idx_user_alert_deliveries_queued ON user_alert_deliveries (created_at) WHERE status = 'queued';

-- 7. Digest batching.
CREATE TABLE user_alert_digests (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'telegram')),
    period TEXT NOT NULL CHECK (period IN ('daily', 'hourly')),
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    digest_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts INT NOT NULL DEFAULT 0,
    next_retry_at TIMESTAMP NULL,
    last_error TEXT NULL,
    sent_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE TABLE user_alert_digest_items (
    id SERIAL PRIMARY KEY,
    digest_id INT NOT NULL REFERENCES user_alert_digests (id) ON DELETE CASCADE,
    delivery_id INT NOT NULL REFERENCES user_alert_deliveries (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    UNIQUE (digest_id, delivery_id)
);
CREATE INDEX idx_user_alert_digests_status ON user_alert_digests (status);
CREATE INDEX idx_user_alert_digest_items_delivery ON user_alert_digest_items (delivery_id);

-- 8. Plan regions and per-user settings; billing.
ALTER TABLE plan_settings ADD COLUMN max_regions INT DEFAULT -1;
CREATE TABLE user_settings (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_type TEXT NOT NULL CHECK (alert_type IN ('HIGH_IMPACT_EVENT', 'REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE', 'DAILY_DIGEST')),
    region TEXT NULL,
    asset TEXT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    UNIQUE (user_id, alert_type, region, asset)
);
ALTER TABLE users
    ADD COLUMN stripe_customer_id TEXT,
    ADD COLUMN stripe_subscription_id TEXT,
    ADD COLUMN subscription_status TEXT DEFAULT 'none',
    ADD COLUMN subscription_current_period_end TIMESTAMP;
ALTER TABLE plan_settings
    ADD COLUMN currency VARCHAR(3) DEFAULT 'EUR',
    ADD COLUMN stripe_product_id TEXT,
    ADD COLUMN stripe_price_id TEXT;

-- 9. Alert metadata (its migration was later removed from the code; the columns stay
--    and the application still writes them).
ALTER TABLE alert_events
    ADD COLUMN raw_input JSONB NULL,
    ADD COLUMN classification JSONB NULL,
    ADD COLUMN category TEXT NULL,
    ADD COLUMN confidence DECIMAL(4, 3) NULL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1));
CREATE INDEX idx_alert_events_category ON alert_events (category);
CREATE INDEX idx_alert_events_raw_input ON alert_events USING GIN (raw_input);

-- 10. Pro and index delivery: rows without an alert event ('geri', 'index_digest'),
--     keyed by user, channel and date.
ALTER TABLE user_alert_deliveries ADD COLUMN batch_window TIMESTAMP;
ALTER TABLE user_alert_deliveries ADD COLUMN geri_date DATE;
ALTER TABLE user_alert_deliveries ALTER COLUMN alert_event_id DROP NOT NULL;
CREATE UNIQUE INDEX idx_geri_delivery_unique ON user_alert_deliveries (user_id, channel, batch_window)
    WHERE delivery_kind = 'geri' AND batch_window IS NOT NULL;
CREATE UNIQUE INDEX idx_geri_delivery_by_date ON user_alert_deliveries (user_id, channel, geri_date)
    WHERE delivery_kind = 'geri' AND geri_date IS NOT NULL;
CREATE UNIQUE INDEX idx_index_digest_delivery_unique ON user_alert_deliveries (user_id, channel, geri_date)
    WHERE delivery_kind = 'index_digest' AND geri_date IS NOT NULL;

-- 11. Later account columns.
ALTER TABLE plan_settings
    ADD COLUMN stripe_product_id_sandbox TEXT,
    ADD COLUMN stripe_price_id_sandbox TEXT;
ALTER TABLE users ALTER COLUMN telegram_link_code TYPE VARCHAR(64);
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;

RESET client_min_messages;
