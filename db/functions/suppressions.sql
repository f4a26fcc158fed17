-- Suppression: a destination whose provider said it is gone for good (no such mailbox, the bot
-- blocked or the chat deleted, the number replied STOP or is not a mobile) is recorded in
-- alerts_suppressions, keyed by (channel, destination): later deliveries to it end 'skipped'
-- without reaching the provider. The key is the destination's value, not the user: a user who
-- changes address is not suppressed, and a suppression ends when a DBA calls alerts_unsuppress().
-- Answers about the message or the provider (policy refusals, throttling, outages, timeouts)
-- never suppress (the senders decide: alerts/senders/*.py, SendResult.suppress).

CREATE OR REPLACE FUNCTION alerts_record_bounce(channel text, destination text, reason text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: the destination is suppressed afterwards (a host's bounce webhook: Brevo hard
-- bounces, Twilio status callbacks with a permanent error code); an existing suppression keeps
-- its first reason and time. Bad input changes nothing and says why. Lock: the suppression row.
#variable_conflict use_variable
DECLARE
    key text := alerts_destination_key(channel, destination);
    added integer;
BEGIN
    IF channel IS NULL OR channel NOT IN ('email', 'telegram', 'sms') THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'unknown channel: use email, telegram or sms');
    END IF;
    IF key IS NULL OR length(key) > 320 THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'no destination, or longer than 320 characters');
    END IF;
    IF nullif(btrim(reason), '') IS NULL THEN
        RETURN jsonb_build_object('ok', false, 'reason', 'give the reason (the provider''s answer)');
    END IF;
    INSERT INTO alerts_suppressions (channel, destination, reason, source)
    VALUES (channel, key, left(btrim(reason), 500), 'bounce')
    ON CONFLICT ON CONSTRAINT alerts_suppressions_pkey DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN jsonb_build_object('ok', true, 'channel', channel, 'destination', key, 'changed', added > 0);
END;
$$;
COMMENT ON FUNCTION alerts_record_bounce(text, text, text) IS
    'Suppresses a destination a provider reported as permanently undeliverable (a host''s bounce webhook, role alerts_host); idempotent. Returns {"ok", "channel", "destination", "changed"} or {"ok": false, "reason"}. Example: SELECT alerts_record_bounce(''email'', ''gone@example.com'', ''Brevo hard_bounce: 550 5.1.1 user unknown'');';

CREATE OR REPLACE FUNCTION alerts_unsuppress(channel text, destination text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: the destination is no longer suppressed afterwards; deliveries skipped meanwhile
-- stay skipped (only new ones are sent). For a DBA (alerts_owner). Lock: the suppression row.
#variable_conflict use_variable
DECLARE
    removed jsonb;
BEGIN
    DELETE FROM alerts_suppressions s
     WHERE s.channel = channel AND s.destination = alerts_destination_key(channel, destination)
    RETURNING jsonb_build_object('reason', s.reason, 'source', s.source, 'since', s.since, 'skipped', s.skipped)
         INTO removed;
    RETURN jsonb_build_object('channel', channel, 'destination', alerts_destination_key(channel, destination),
                              'changed', removed IS NOT NULL, 'was', removed);
END;
$$;
COMMENT ON FUNCTION alerts_unsuppress(text, text) IS
    'Ends a destination''s suppression (a DBA''s call, after the user fixed the address or unblocked the bot); says what was removed. Example: SELECT alerts_unsuppress(''telegram'', ''100001'');';

CREATE OR REPLACE FUNCTION alerts_record_suppressions(kind text, ids bigint[], claim_tokens bigint[], reasons text[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET jit = off
AS $$
-- Guarantees: the destinations of the given deliveries (kind 'delivery') or digests ('digest')
-- that are still 'sending' under the caller's claim token are suppressed with the provider's
-- answer as the reason, in one statement; rows not held by that claim, and destinations already
-- suppressed, are passed over; returns how many destinations were added. The runner calls it
-- before it records those rows' outcome. Lock: the new suppression rows.
DECLARE
    added integer;
BEGIN
    IF kind IS NULL OR kind NOT IN ('delivery', 'digest') THEN
        RAISE EXCEPTION 'alerts_record_suppressions: kind must be delivery or digest, got %', coalesce(kind, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(ids) IS DISTINCT FROM cardinality(claim_tokens)
       OR cardinality(ids) IS DISTINCT FROM cardinality(reasons) THEN
        RAISE EXCEPTION 'alerts_record_suppressions: ids, claim_tokens and reasons must have the same length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH held AS (
        SELECT d.user_id, d.channel, c.reason
          FROM unnest(ids, claim_tokens, reasons) AS c (id, token, reason)
          JOIN user_alert_deliveries d ON d.id = c.id AND d.claim_token = c.token AND d.status = 'sending'
         WHERE kind = 'delivery' AND d.id = ANY (ids)  -- by primary key, whatever the statistics say
        UNION ALL
        SELECT g.user_id, g.channel, c.reason
          FROM unnest(ids, claim_tokens, reasons) AS c (id, token, reason)
          JOIN alert_digests g ON g.id = c.id AND g.claim_token = c.token AND g.status = 'sending'
         WHERE kind = 'digest' AND g.id = ANY (ids)
    ),
    destinations AS (
        SELECT DISTINCT ON (h.channel, key) h.channel, key,
               left(coalesce(nullif(btrim(h.reason), ''), 'the provider refused the destination'), 500) AS reason
          FROM held h
          JOIN users u ON u.id = h.user_id
          CROSS JOIN LATERAL alerts_destination_key(h.channel, alerts_user_destination(u, h.channel)) AS key
         WHERE key IS NOT NULL AND length(key) <= 320
         ORDER BY h.channel, key
    )
    INSERT INTO alerts_suppressions (channel, destination, reason, source)
    SELECT ds.channel, ds.key, ds.reason, 'provider' FROM destinations ds
    ON CONFLICT ON CONSTRAINT alerts_suppressions_pkey DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
COMMENT ON FUNCTION alerts_record_suppressions(text, bigint[], bigint[], text[]) IS
    'Suppresses the destinations of claimed deliveries (kind delivery) or digests (kind digest) whose provider answered that the destination is gone for good; only rows still sending under the given claim tokens. Example: SELECT alerts_record_suppressions(''delivery'', ARRAY[17], ARRAY[-4242], ARRAY[''Telegram 403: Forbidden: bot was blocked by the user'']);';

CREATE OR REPLACE FUNCTION alerts_claims_to_skip(kind text, ids bigint[], claim_tokens bigint[])
RETURNS TABLE (id bigint, reason text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET jit = off
AS $$
-- Guarantees: of the given deliveries (kind 'delivery') or digests ('digest') still 'sending'
-- under the caller's claim token, those whose user unsubscribed from the channel or whose
-- destination is suppressed, each with the reason to record when it is skipped; counts them on
-- the opt-out or suppression (skipped, last_skipped_at) in the same statement. Changes no
-- delivery: the runner records them skipped with the other outcomes of the batch.
-- Lock: the counted opt-out and suppression rows.
BEGIN
    IF kind IS NULL OR kind NOT IN ('delivery', 'digest') THEN
        RAISE EXCEPTION 'alerts_claims_to_skip: kind must be delivery or digest, got %', coalesce(kind, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(ids) IS DISTINCT FROM cardinality(claim_tokens) THEN
        RAISE EXCEPTION 'alerts_claims_to_skip: ids and claim_tokens must have the same length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM alerts_suppressions) AND NOT EXISTS (SELECT 1 FROM alerts_channel_optouts) THEN
        RETURN;  -- nothing suppressed, nobody unsubscribed: no look-up per row
    END IF;
    RETURN QUERY
    WITH held AS (
        SELECT d.id::bigint AS id, d.user_id::bigint AS user_id, d.channel
          FROM unnest(ids, claim_tokens) AS c (id, token)
          JOIN user_alert_deliveries d ON d.id = c.id AND d.claim_token = c.token AND d.status = 'sending'
         WHERE kind = 'delivery' AND d.id = ANY (ids)  -- by primary key, whatever the statistics say
        UNION ALL
        SELECT g.id::bigint, g.user_id::bigint, g.channel
          FROM unnest(ids, claim_tokens) AS c (id, token)
          JOIN alert_digests g ON g.id = c.id AND g.claim_token = c.token AND g.status = 'sending'
         WHERE kind = 'digest' AND g.id = ANY (ids)
    ),
    blocked AS (
        SELECT h.id, h.channel, o.user_id AS optout_user, s.destination AS suppressed,
               CASE WHEN o.user_id IS NOT NULL
                    THEN format('unsubscribed: the user turned %s alerts off (%s, %s)', h.channel, o.source,
                                to_char(o.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
                    ELSE format('suppressed: the %s destination is undeliverable since %s (%s)', h.channel,
                                to_char(s.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), s.reason)
               END AS reason
          FROM held h
          LEFT JOIN users u ON u.id = h.user_id
          LEFT JOIN alerts_channel_optouts o ON o.user_id = h.user_id AND o.channel = h.channel
          LEFT JOIN alerts_suppressions s
            ON s.channel = h.channel AND s.destination = alerts_destination_key(h.channel, alerts_user_destination(u, h.channel))
         WHERE o.user_id IS NOT NULL OR s.destination IS NOT NULL
    ),
    counted_optouts AS (
        UPDATE alerts_channel_optouts o
           SET skipped = o.skipped + n.skipped, last_skipped_at = now()
          FROM (SELECT b.optout_user, b.channel, count(*) AS skipped FROM blocked b
                 WHERE b.optout_user IS NOT NULL GROUP BY 1, 2) n
         WHERE o.user_id = n.optout_user AND o.channel = n.channel
        RETURNING 1
    ),
    counted_suppressions AS (
        UPDATE alerts_suppressions s
           SET skipped = s.skipped + n.skipped, last_skipped_at = now()
          FROM (SELECT b.channel, b.suppressed, count(*) AS skipped FROM blocked b
                 WHERE b.optout_user IS NULL GROUP BY 1, 2) n
         WHERE s.channel = n.channel AND s.destination = n.suppressed
        RETURNING 1
    )
    SELECT b.id, b.reason FROM blocked b ORDER BY b.id;
END;
$$;
COMMENT ON FUNCTION alerts_claims_to_skip(text, bigint[], bigint[]) IS
    'Of claimed deliveries (kind delivery) or digests (kind digest) still held by the given claim tokens, those to skip instead of sending (the user unsubscribed from the channel, or its destination is suppressed), with the reason. Example: SELECT * FROM alerts_claims_to_skip(''delivery'', ARRAY[17], ARRAY[-4242]);';

CREATE OR REPLACE FUNCTION alerts_suppression_status()
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes nothing; per channel, how many destinations are suppressed and users
-- unsubscribed, and how many deliveries and digests were skipped for either (since the
-- suppression or opt-out began, and of those in the last 24 hours). Lock: none.
    SELECT jsonb_build_object(
        'suppressed_destinations', (SELECT coalesce(jsonb_object_agg(x.channel, x.n), '{}')
                                      FROM (SELECT s.channel, count(*) AS n FROM alerts_suppressions s GROUP BY 1) x),
        'unsubscribed_users', (SELECT coalesce(jsonb_object_agg(x.channel, x.n), '{}')
                                 FROM (SELECT o.channel, count(*) AS n FROM alerts_channel_optouts o GROUP BY 1) x),
        'skipped_suppressed', (SELECT coalesce(sum(s.skipped), 0) FROM alerts_suppressions s),
        'skipped_unsubscribed', (SELECT coalesce(sum(o.skipped), 0) FROM alerts_channel_optouts o),
        'suppressed_last_24h', (SELECT count(*) FROM alerts_suppressions s WHERE s.since >= now() - interval '24 hours'))
$$;
COMMENT ON FUNCTION alerts_suppression_status() IS
    'Suppressed destinations and unsubscribed users per channel, and how many deliveries were skipped for them (runner.py --status shows it under "suppression"). Example: SELECT alerts_suppression_status();';
