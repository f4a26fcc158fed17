-- Deploy alerts_v2:host_tables
-- The host application's input tables. Created only where missing; on an
-- existing database only the missing columns are added. Nothing here drops,
-- renames or retypes anything the host owns.
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL client_min_messages = warning;
\ir ../checks/roles_preflight.sql

CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    email text,
    email_verified boolean,
    telegram_chat_id text,
    phone_number text,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS email text,
    ADD COLUMN IF NOT EXISTS email_verified boolean,
    ADD COLUMN IF NOT EXISTS telegram_chat_id text,
    ADD COLUMN IF NOT EXISTS phone_number text,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now();

CREATE TABLE IF NOT EXISTS user_plans (
    user_id bigint NOT NULL UNIQUE,
    plan text NOT NULL DEFAULT 'free'
);
ALTER TABLE user_plans
    ADD COLUMN IF NOT EXISTS plan text DEFAULT 'free';

CREATE TABLE IF NOT EXISTS plan_settings (
    plan_code text NOT NULL UNIQUE,
    allowed_alert_types text[] NOT NULL DEFAULT '{}',
    max_email_alerts_per_day integer,
    delivery_config jsonb NOT NULL DEFAULT '{}'
);
ALTER TABLE plan_settings
    ADD COLUMN IF NOT EXISTS allowed_alert_types text[] DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS max_email_alerts_per_day integer,
    ADD COLUMN IF NOT EXISTS delivery_config jsonb DEFAULT '{}';

CREATE TABLE IF NOT EXISTS user_alert_prefs (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL,
    alert_type text NOT NULL,
    region text NOT NULL DEFAULT 'global',
    asset text,
    threshold integer,
    enabled boolean NOT NULL DEFAULT true,
    delivery_mode text
);
ALTER TABLE user_alert_prefs
    ADD COLUMN IF NOT EXISTS asset text,
    ADD COLUMN IF NOT EXISTS threshold integer,
    ADD COLUMN IF NOT EXISTS enabled boolean DEFAULT true,
    ADD COLUMN IF NOT EXISTS delivery_mode text;

CREATE TABLE IF NOT EXISTS events (
    id bigserial PRIMARY KEY,
    title text,
    region text,
    category text,
    severity_score integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS title text,
    ADD COLUMN IF NOT EXISTS region text,
    ADD COLUMN IF NOT EXISTS category text,
    ADD COLUMN IF NOT EXISTS severity_score integer,
    ADD COLUMN IF NOT EXISTS inserted_at timestamptz DEFAULT now();

CREATE TABLE IF NOT EXISTS risk_indices (
    id bigserial PRIMARY KEY,
    region text,
    window_days integer,
    risk_score numeric,
    trend text,
    calculated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE risk_indices
    ADD COLUMN IF NOT EXISTS region text,
    ADD COLUMN IF NOT EXISTS window_days integer,
    ADD COLUMN IF NOT EXISTS risk_score numeric,
    ADD COLUMN IF NOT EXISTS trend text,
    ADD COLUMN IF NOT EXISTS calculated_at timestamptz DEFAULT now();

CREATE TABLE IF NOT EXISTS asset_risk (
    id bigserial PRIMARY KEY,
    asset text,
    region text,
    window_days integer,
    risk_score numeric,
    direction text,
    calculated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE asset_risk
    ADD COLUMN IF NOT EXISTS asset text,
    ADD COLUMN IF NOT EXISTS region text,
    ADD COLUMN IF NOT EXISTS window_days integer,
    ADD COLUMN IF NOT EXISTS risk_score numeric,
    ADD COLUMN IF NOT EXISTS direction text,
    ADD COLUMN IF NOT EXISTS calculated_at timestamptz DEFAULT now();

COMMIT;
