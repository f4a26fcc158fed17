-- Deploy alerts_v2:delivery_hygiene
-- What mail and chat providers expect of a sender at volume:
--   alerts_channel_optouts  users who turned a channel's alerts off with a one-click unsubscribe
--                           link (alerts_unsubscribe(token)); Phase B creates no delivery for them
--   alerts_suppressions     destinations a provider answered are gone for good (no such mailbox,
--                           bot blocked, chat not found, STOP, not a mobile number), or a host's
--                           bounce webhook reported (alerts_record_bounce()); deliveries to them
--                           end 'skipped' without reaching the provider
--   alerts_secrets          the secret unsubscribe tokens are signed with; only alerts_owner reads it
--   role alerts_host        the host application's role: may call alerts_unsubscribe(),
--                           alerts_resubscribe() and alerts_record_bounce(), nothing else
BEGIN;
SET LOCAL lock_timeout = '5s';

DO $roles$
BEGIN
    IF to_regrole('alerts_host') IS NULL THEN
        BEGIN
            CREATE ROLE alerts_host NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a concurrent deploy into another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'deploying as % (not superuser, no CREATEROLE) needs role alerts_host: have a DBA run CREATE ROLE alerts_host NOLOGIN; then deploy again', current_user
                    USING ERRCODE = 'insufficient_privilege';
        END;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA public TO alerts_host;

\ir ../../functions/destination_key.sql

CREATE TABLE IF NOT EXISTS alerts_channel_optouts (
    user_id bigint NOT NULL,
    channel text NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    skipped bigint NOT NULL DEFAULT 0,
    last_skipped_at timestamptz,
    CONSTRAINT alerts_channel_optouts_pkey PRIMARY KEY (user_id, channel),
    CONSTRAINT alerts_channel_optouts_channel_known CHECK (channel IN ('email', 'telegram', 'sms')),
    CONSTRAINT alerts_channel_optouts_source_named CHECK (btrim(source) <> '' AND length(source) <= 100),
    CONSTRAINT alerts_channel_optouts_skipped_counted CHECK (skipped >= 0 AND (skipped = 0) = (last_skipped_at IS NULL))
);
CREATE TABLE IF NOT EXISTS alerts_suppressions (
    channel text NOT NULL,
    destination text NOT NULL,
    reason text NOT NULL,
    source text NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    skipped bigint NOT NULL DEFAULT 0,
    last_skipped_at timestamptz,
    CONSTRAINT alerts_suppressions_pkey PRIMARY KEY (channel, destination),
    CONSTRAINT alerts_suppressions_channel_known CHECK (channel IN ('email', 'telegram', 'sms')),
    CONSTRAINT alerts_suppressions_destination_key CHECK (length(destination) <= 320
        AND destination = alerts_destination_key(channel, destination)),
    CONSTRAINT alerts_suppressions_reason_given CHECK (btrim(reason) <> '' AND length(reason) <= 500),
    CONSTRAINT alerts_suppressions_source_known CHECK (source IN ('provider', 'bounce')),
    CONSTRAINT alerts_suppressions_skipped_counted CHECK (skipped >= 0 AND (skipped = 0) = (last_skipped_at IS NULL))
);
CREATE TABLE IF NOT EXISTS alerts_secrets (
    name text NOT NULL,
    secret text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alerts_secrets_pkey PRIMARY KEY (name),
    CONSTRAINT alerts_secrets_name_known CHECK (name IN ('unsubscribe')),
    CONSTRAINT alerts_secrets_long_enough CHECK (length(secret) >= 16)
);
COMMENT ON TABLE alerts_channel_optouts IS
    'Users who turned a channel''s alerts off (alerts_unsubscribe(): a one-click unsubscribe link); Phase B creates no delivery on that channel for them and Phase C skips those already queued. alerts_resubscribe() turns it back on.';
COMMENT ON COLUMN alerts_channel_optouts.user_id IS 'users.id (no foreign key: the host''s table is left as it is).';
COMMENT ON COLUMN alerts_channel_optouts.skipped IS 'Deliveries and digests skipped because of this opt-out; last_skipped_at the latest.';
COMMENT ON TABLE alerts_suppressions IS
    'Destinations a provider answered are permanently undeliverable, or a host''s bounce webhook reported (alerts_record_bounce()); deliveries to them end skipped with the reason. Keyed by the destination, not the user: a changed address is not suppressed. alerts_unsuppress() ends one.';
COMMENT ON COLUMN alerts_suppressions.destination IS 'alerts_destination_key(channel, destination): email lower-cased, phone numbers without formatting.';
COMMENT ON COLUMN alerts_suppressions.source IS 'provider: a Phase C answer; bounce: alerts_record_bounce().';
COMMENT ON COLUMN alerts_suppressions.skipped IS 'Deliveries and digests skipped because of this suppression; last_skipped_at the latest.';
COMMENT ON TABLE alerts_secrets IS
    'Secrets the engine checks signatures with (unsubscribe: ALERTS_UNSUBSCRIBE_SECRET, set by runner.py --migrate); only alerts_owner reads it.';

\ir ../../functions/suppressions.sql
\ir ../../functions/unsubscribe.sql

REVOKE ALL ON alerts_secrets, alerts_suppressions, alerts_channel_optouts FROM PUBLIC;
REVOKE ALL ON FUNCTION alerts_hmac_sha256(bytea, bytea), alerts_unsubscribe_signature(text, bigint, text),
    alerts_secret_fingerprint(text), alerts_set_unsubscribe_secret(text), alerts_unsubscribe_secret_check(text),
    alerts_unsubscribe(text), alerts_resubscribe(bigint, text), alerts_destination_key(text, text),
    alerts_record_bounce(text, text, text), alerts_unsuppress(text, text),
    alerts_record_suppressions(text, bigint[], bigint[], text[]), alerts_claims_to_skip(text, bigint[], bigint[]),
    alerts_suppression_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_unsubscribe_secret_check(text), alerts_record_suppressions(text, bigint[], bigint[], text[]),
    alerts_claims_to_skip(text, bigint[], bigint[]), alerts_suppression_status() TO alerts_runner;
GRANT EXECUTE ON FUNCTION alerts_suppression_status() TO alerts_readonly;
GRANT EXECUTE ON FUNCTION alerts_unsubscribe(text), alerts_resubscribe(bigint, text),
    alerts_record_bounce(text, text, text) TO alerts_host;
SELECT alerts_assign_owner();
COMMIT;
