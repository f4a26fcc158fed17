-- Deploy alerts_v2:claim_deliveries@v1.2 (the version tagged v1.2; reworked since, so its included
-- files are inlined as they were then; revert/claim_deliveries.sql restores them)
-- The result gains a column, which CREATE OR REPLACE cannot do: drop and create, in one transaction.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_deliveries(integer);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_deliveries(integer, text[]);
-- db/functions/user_destination.sql as it was at @v1.2 (frozen copy).
-- Where a user receives a channel's messages: the one rule the claims share.
CREATE OR REPLACE FUNCTION alerts_user_destination(u users, channel text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT nullif(btrim(CASE channel
                            WHEN 'email' THEN u.email::text
                            WHEN 'telegram' THEN u.telegram_chat_id::text
                            WHEN 'sms' THEN u.phone_number::text
                        END), '')
$$;
COMMENT ON FUNCTION alerts_user_destination(users, text) IS
    'The user''s destination for a channel (email, telegram chat id or phone number), NULL when blank. Example: SELECT alerts_user_destination(u, ''email'') FROM users u;';
-- db/functions/claim_deliveries.sql as it was at @v1.2 (frozen copy).
-- Claims due instant deliveries for a sender. Safe under any number of
-- concurrent callers: FOR UPDATE SKIP LOCKED hands each row to one caller only.
-- claim_deliveries(batch, channels) claims only the listed channels (NULL: all), so a
-- runner never claims rows for a channel it cannot send on right now.
-- Every claim hands out a fencing token (claim_token, one per call): the outcome
-- functions change a row only while it still carries the token of the caller's claim.
-- Ids are returned as bigint whatever the table's id type (a host table may use integer).
CREATE OR REPLACE FUNCTION claim_deliveries(batch integer, channels text[])
RETURNS TABLE (
    delivery_id bigint,
    claim_token bigint,
    user_id bigint,
    channel text,
    destination text,
    attempts integer,
    alert_event_id bigint,
    alert_type text,
    severity integer,
    scope_region text,
    scope_assets text[],
    headline text,
    body text,
    event_created_at timestamptz
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET jit = off
AS $$
-- Guarantees: each due row (queued, instant, next_retry_at NULL or past) is handed
-- to exactly one caller, earliest due first; it leaves as 'sending' with attempts + 1
-- and a lease (alerts_config.lease_duration) and a new claim_token in the same statement,
-- so a sender that crashes still uses up an attempt and its rows are reclaimed when the
-- lease ends, and a sender whose lease ended can no longer record over a newer claim.
-- Lock: row locks only (FOR UPDATE SKIP LOCKED); Phase C's advisory lock is the runner's.
#variable_conflict use_column
DECLARE
    lease interval := (SELECT c.lease_duration FROM alerts_config c);
    token bigint := nextval('alerts_claim_token_seq');
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'claim_deliveries: batch must be a positive integer, got %', coalesce(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH due_deliveries AS (
        -- In a CTE so the LIMIT ... SKIP LOCKED runs once (PostgreSQL bug #15715).
        SELECT d.id
          FROM user_alert_deliveries d
         WHERE d.status = 'queued'
           AND d.delivery_kind = 'instant'
           AND coalesce(d.next_retry_at, d.created_at) <= now()
           AND (channels IS NULL OR d.channel = ANY (channels))
         ORDER BY coalesce(d.next_retry_at, d.created_at), d.id
         LIMIT batch
           FOR UPDATE SKIP LOCKED
    ),
    claimed_deliveries AS (
        UPDATE user_alert_deliveries d
           SET status = 'sending', attempts = d.attempts + 1, claim_token = token,
               claimed_at = now(), lease_expires_at = now() + coalesce(lease, interval '5 minutes')
         WHERE d.id = ANY (ARRAY(SELECT due.id FROM due_deliveries due))  -- by primary key, whatever the
           AND d.status = 'queued'                                          -- (maybe stale) row estimates
        RETURNING d.id, d.user_id, d.channel, d.attempts, d.alert_event_id,
                  coalesce(d.next_retry_at, d.created_at) AS due_at
    )
    SELECT cd.id::bigint, token, cd.user_id::bigint, cd.channel,
           alerts_user_destination(u, cd.channel) AS destination,
           cd.attempts::integer, ae.id::bigint, ae.alert_type, ae.severity::integer, ae.scope_region, ae.scope_assets,
           ae.headline, ae.body, ae.created_at::timestamptz
      FROM claimed_deliveries cd
      JOIN alert_events ae ON ae.id = cd.alert_event_id
      LEFT JOIN users u ON u.id = cd.user_id
     ORDER BY cd.due_at, cd.id;
END;
$$;
COMMENT ON FUNCTION claim_deliveries(integer, text[]) IS
    'Claims up to batch due instant deliveries of the given channels (NULL: every channel); otherwise as claim_deliveries(batch). Example: SELECT * FROM claim_deliveries(10, ARRAY[''email'']);';

CREATE OR REPLACE FUNCTION claim_deliveries(batch integer)
RETURNS TABLE (
    delivery_id bigint,
    claim_token bigint,
    user_id bigint,
    channel text,
    destination text,
    attempts integer,
    alert_event_id bigint,
    alert_type text,
    severity integer,
    scope_region text,
    scope_assets text[],
    headline text,
    body text,
    event_created_at timestamptz
)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees and lock: those of claim_deliveries(batch, channels), over every channel.
    SELECT * FROM claim_deliveries(batch, NULL::text[])
$$;
COMMENT ON FUNCTION claim_deliveries(integer) IS
    'Claims up to batch due instant deliveries (FOR UPDATE SKIP LOCKED), marks them sending with attempts + 1 and a fencing claim_token, and returns what a sender needs. Record the outcome with mark_deliveries_sent/failed/skipped, requeue_deliveries or release_deliveries, passing each row''s claim_token. Example: SELECT * FROM claim_deliveries(10);';

-- What a claim would take now, without taking it: for dry runs and monitors.
CREATE OR REPLACE FUNCTION count_due_deliveries(up_to integer DEFAULT NULL, channels text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT count(*)
      FROM (SELECT 1
              FROM user_alert_deliveries d
             WHERE d.status = 'queued'
               AND d.delivery_kind = 'instant'
               AND coalesce(d.next_retry_at, d.created_at) <= now()
               AND (channels IS NULL OR d.channel = ANY (channels))
             LIMIT up_to) due
$$;
COMMENT ON FUNCTION count_due_deliveries(integer, text[]) IS
    'Counts the deliveries claim_deliveries would hand out now, of the given channels (NULL: all), stopping at up_to (NULL: no limit). Changes nothing. Example: SELECT count_due_deliveries(1000);';
REVOKE ALL ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]),
    count_due_deliveries(integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_deliveries(integer), claim_deliveries(integer, text[]),
    count_due_deliveries(integer, text[]) TO alerts_runner;
GRANT EXECUTE ON FUNCTION count_due_deliveries(integer, text[]) TO alerts_readonly;
COMMIT;
