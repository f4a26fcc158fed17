-- Deploy alerts_v2:send_pacing
-- Provider rate limits kept across every sender process: the channels' next send slot and the
-- destinations still within their own interval (a Telegram chat: one message a second), and
-- alerts_reserve_send_slots(), which hands out slots from them.
BEGIN;
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS alerts_send_pacing (
    channel text NOT NULL,
    next_slot_at timestamptz NOT NULL,
    CONSTRAINT alerts_send_pacing_pkey PRIMARY KEY (channel),
    CONSTRAINT alerts_send_pacing_channel_named CHECK (btrim(channel) <> '' AND length(channel) <= 100),
    CONSTRAINT alerts_send_pacing_next_slot_finite CHECK (isfinite(next_slot_at))
);
CREATE TABLE IF NOT EXISTS alerts_send_pacing_destinations (
    channel text NOT NULL,
    destination_sha256 bytea NOT NULL,
    next_slot_at timestamptz NOT NULL,
    CONSTRAINT alerts_send_pacing_destinations_pkey PRIMARY KEY (channel, destination_sha256),
    CONSTRAINT alerts_send_pacing_destinations_channel_fkey FOREIGN KEY (channel)
        REFERENCES alerts_send_pacing (channel) ON DELETE CASCADE,
    CONSTRAINT alerts_send_pacing_destinations_sha256_length CHECK (octet_length(destination_sha256) = 32),
    CONSTRAINT alerts_send_pacing_destinations_next_slot_finite CHECK (isfinite(next_slot_at))
);
COMMENT ON TABLE alerts_send_pacing IS
    'One row per channel that has sent with a rate or a per-destination interval: the next moment a message of it may start, whichever sender process sends it (alerts_reserve_send_slots()).';
COMMENT ON COLUMN alerts_send_pacing.next_slot_at IS
    'The earliest start of the channel''s next message; in the past when the channel is idle.';
COMMENT ON TABLE alerts_send_pacing_destinations IS
    'Destinations of a channel still within their own interval (one Telegram chat: about a second); deleted once it is over, so the table holds about a second''s worth of destinations.';
COMMENT ON COLUMN alerts_send_pacing_destinations.destination_sha256 IS
    'sha256 of the destination''s text (a chat id, a phone number): the destination itself is not kept.';
COMMENT ON COLUMN alerts_send_pacing_destinations.next_slot_at IS
    'The earliest start of the next message to this destination.';

\ir ../../functions/reserve_send_slots.sql

REVOKE ALL ON FUNCTION alerts_reserve_send_slots(text, text[], double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_reserve_send_slots(text, text[], double precision, double precision)
    TO alerts_runner;
GRANT SELECT ON alerts_send_pacing, alerts_send_pacing_destinations TO alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
