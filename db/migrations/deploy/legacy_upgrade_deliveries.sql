-- Deploy alerts_v2:legacy_upgrade_deliveries
-- Brings a user_alert_deliveries table adopted from a pre-v2 installation to the shape
-- engine_tables creates, in place. On a table engine_tables created, every step finds
-- nothing to do and takes no lock stronger than a read.
--
-- Guarantees once it has run:
--   * columns delivery_kind ('instant'), attempts (0), next_retry_at, last_error,
--     claimed_at, lease_expires_at exist with the engine's defaults; status defaults to
--     'queued'; all without rewriting the table. The host's column types are kept
--     (integer ids, timestamps without time zone, which the engine reads and writes as
--     UTC); a missing next_retry_at or sent_at gets created_at's type, so the claim
--     queue's coalesce(next_retry_at, created_at) stays one type (and indexable);
--   * rows of kinds the engine does not own (the host's own delivery_kind values, rows
--     without an alert event) are kept as they are; the engine never claims them;
--   * the CHECKs the host's own writers could break hold only for rows a sender of
--     the engine has attempted (attempts > 0): the host records outcomes whole, for
--     example sent_at on a failed row, a 'sent' row without sent_at in the web account,
--     a failure without last_error, a delivery_kind of its own;
--   * every status is one of the contract's, legacy statuses mapped:
--       pending   -> queued   (the pre-v2 name of queued)
--       delivered -> sent     (confirmed by the provider: sent, and more)
--       any other value outside the contract -> failed, last_error 'legacy status: <value>'
--     and rows whose status is mapped, or that a sender attempted, made to satisfy the
--     engine's CHECKs without losing a value (rows the host wrote whole and whose
--     status is the contract's keep every value):
--       sent without sent_at        sent_at = created_at
--       not sent, with a sent_at    the time moves into last_error ('legacy sent_at: ...')
--       failed without last_error   last_error says so
--       sending (a pre-v2 sender died mid-send)  attempts >= 1, claimed at and lease
--                                   ending at the upgrade: reclaim_expired_deliveries()
--                                   takes it back like any expired claim;
--   * the engine's CHECK constraints are validated, and the foreign key to alert_events
--     is the engine's (ON DELETE CASCADE);
--   * no row is deleted here (legacy_merge_duplicates resolves duplicates), and no
--     legacy column is dropped, renamed or retyped; the pre-v2 unique index stays.
--
-- Safe on a large live table: no BEGIN/COMMIT of its own, so each statement is its own
-- transaction; strong locks only for metadata changes, within lock_timeout; the legacy
-- rows are fixed in committed batches of 5,000 ids; VALIDATE takes SHARE UPDATE
-- EXCLUSIVE, which lets reads and writes go on.
SET lock_timeout = '5s';
SET client_min_messages = warning;
-- Timestamps without time zone are UTC (the host's convention) in every comparison.
SET timezone = 'UTC';
\ir ../../functions/legacy_upgrade_steps.sql

-- 1. Missing columns and defaults. Metadata only: constant defaults are not written into rows.
DO $$
DECLARE
    created_type text := (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                           WHERE attrelid = 'user_alert_deliveries'::regclass AND attname = 'created_at');
BEGIN
    IF EXISTS (SELECT 1
                 FROM unnest(ARRAY['delivery_kind', 'attempts', 'next_retry_at', 'last_error', 'sent_at',
                                   'provider_message_id', 'claimed_at', 'lease_expires_at']) AS v2 (attname)
                WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                   WHERE a.attrelid = 'user_alert_deliveries'::regclass AND a.attname = v2.attname
                                     AND NOT a.attisdropped)) THEN
        EXECUTE format(
            'ALTER TABLE user_alert_deliveries
                 ADD COLUMN IF NOT EXISTS delivery_kind text NOT NULL DEFAULT %L,
                 ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
                 ADD COLUMN IF NOT EXISTS next_retry_at %s,
                 ADD COLUMN IF NOT EXISTS last_error text,
                 ADD COLUMN IF NOT EXISTS sent_at %s,
                 ADD COLUMN IF NOT EXISTS provider_message_id text,
                 ADD COLUMN IF NOT EXISTS claimed_at timestamptz,
                 ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz',
            'instant', created_type, created_type);
    END IF;
    IF (SELECT pg_get_expr(d.adbin, d.adrelid)
          FROM pg_attrdef d
          JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         WHERE d.adrelid = 'user_alert_deliveries'::regclass AND a.attname = 'status') IS DISTINCT FROM '''queued''::text' THEN
        ALTER TABLE user_alert_deliveries ALTER COLUMN status SET DEFAULT 'queued';
    END IF;
    -- Room for HOT updates, as engine_tables creates it; affects new pages only (no rewrite).
    IF NOT coalesce((SELECT 'fillfactor=80' = ANY (reloptions) FROM pg_class
                      WHERE oid = 'user_alert_deliveries'::regclass), false) THEN
        ALTER TABLE user_alert_deliveries SET (fillfactor = 80);
    END IF;
END
$$;

-- 2. Legacy-only columns that are NOT NULL without a default would make every engine
--    INSERT fail: they accept NULL from now on (values kept; recorded in the log).
SELECT alerts_legacy_accept_null('user_alert_deliveries',
                                 ARRAY['id', 'alert_event_id', 'user_id', 'channel', 'delivery_kind', 'status',
                                       'attempts', 'next_retry_at', 'last_error', 'sent_at', 'provider_message_id',
                                       'claimed_at', 'lease_expires_at', 'created_at', 'digest_id']);

-- 3. Column types are kept (see the header). An earlier version of this change turned
--    created_at and sent_at into timestamptz, dropping the legacy indexes on them first
--    and recording them as 'deferred_index'; one it recorded and did not rebuild (a
--    deploy interrupted in between) is rebuilt here, CONCURRENTLY.
-- A rebuild that failed earlier left an INVALID index under the name: dropped, then built again.
SELECT alerts_legacy_invalid_index_drops('user_alert_deliveries')
\gexec

-- CONCURRENTLY waits, without blocking anyone, for older transactions to finish.
SET lock_timeout = '10min';
SELECT alerts_legacy_deferred_index_builds('user_alert_deliveries')
\gexec
SET lock_timeout = '5s';

-- 4. The engine's CHECK constraints, added NOT VALID (a short lock; new and updated rows
--    are checked from now on). Existing rows are fixed in step 5 and validated in step 6.
--    On an adopted table they admit what the host's writers store (see the header); a
--    CHECK of the host's under the same name (its channel and status lists) is kept.
--    One an interrupted earlier upgrade left NOT VALID with another definition (for
--    example a delivery_kind list without the host's kinds) is replaced.
DO $$
DECLARE
    leftover record;
BEGIN
    FOR leftover IN
        SELECT pc.conname
          FROM pg_constraint pc
          JOIN (VALUES ('user_alert_deliveries_delivery_kind_check', $c$CHECK ((delivery_kind <> ''::text))$c$),
                       ('user_alert_deliveries_sent_has_sent_at',
                        $c$CHECK ((((status = 'sent'::text) = (sent_at IS NOT NULL)) OR (attempts = 0)))$c$),
                       ('user_alert_deliveries_failed_has_error',
                        $c$CHECK (((status <> 'failed'::text) OR (last_error IS NOT NULL) OR (attempts = 0)))$c$)
               ) AS host_compatible (conname, definition) ON host_compatible.conname = pc.conname
         WHERE pc.conrelid = 'user_alert_deliveries'::regclass AND NOT pc.convalidated
           AND pg_get_constraintdef(pc.oid) <> host_compatible.definition || ' NOT VALID'
    LOOP
        EXECUTE format('ALTER TABLE user_alert_deliveries DROP CONSTRAINT %I', leftover.conname);
    END LOOP;
END
$$;
SELECT alerts_legacy_add_checks('user_alert_deliveries', jsonb_build_object(
           'user_alert_deliveries_channel_check', $c$CHECK (channel IN ('email', 'telegram', 'sms'))$c$,
           -- The engine's kinds are 'instant' and 'digest'; the host has kinds of its own.
           'user_alert_deliveries_delivery_kind_check', $c$CHECK (delivery_kind <> '')$c$,
           'user_alert_deliveries_status_check', $c$CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped'))$c$,
           'user_alert_deliveries_attempts_check', 'CHECK (attempts >= 0)',
           'user_alert_deliveries_sent_has_sent_at', $c$CHECK ((status = 'sent') = (sent_at IS NOT NULL) OR attempts = 0)$c$,
           'user_alert_deliveries_failed_has_error', $c$CHECK (status <> 'failed' OR last_error IS NOT NULL OR attempts = 0)$c$,
           'user_alert_deliveries_sending_was_attempted', $c$CHECK (status <> 'sending' OR attempts > 0)$c$,
           'user_alert_deliveries_sending_has_lease', $c$CHECK ((status = 'sending') = (lease_expires_at IS NOT NULL))$c$,
           'user_alert_deliveries_sending_was_claimed', $c$CHECK (status <> 'sending' OR claimed_at IS NOT NULL)$c$));

-- 5. Legacy rows made to satisfy them (mapping in the header), walking the primary key
--    in committed batches of 5,000 ids; only while a CHECK is still unvalidated, so a
--    second deploy reads nothing.
DO $$
DECLARE
    from_id bigint := -9223372036854775808;
    to_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'user_alert_deliveries'::regclass AND contype = 'c' AND NOT convalidated) THEN
        RETURN;
    END IF;
    LOOP
        SELECT max(id) INTO to_id
          FROM (SELECT id FROM user_alert_deliveries WHERE id > from_id ORDER BY id LIMIT 5000) batch;
        EXIT WHEN to_id IS NULL;
        WITH mapped AS (
            SELECT d.id,
                   CASE
                       WHEN d.status IN ('queued', 'sending', 'sent', 'failed', 'skipped') THEN d.status
                       WHEN d.status = 'pending' THEN 'queued'
                       WHEN d.status = 'delivered' THEN 'sent'
                       ELSE 'failed'
                   END AS status,
                   d.status AS legacy_status,
                   -- Rows the host wrote whole, with a contract status, keep every value.
                   (d.status NOT IN ('queued', 'sending', 'sent', 'failed', 'skipped') OR d.attempts > 0
                    OR d.status = 'sending') AS normalized
              FROM user_alert_deliveries d
             WHERE d.id > from_id AND d.id <= to_id
        ),
        fixed AS (
            SELECT m.id, m.status,
                   CASE WHEN m.status = 'sent' THEN coalesce(d.sent_at, d.created_at) END AS sent_at,
                   nullif(concat_ws('; ',
                       d.last_error,
                       CASE WHEN m.legacy_status IS DISTINCT FROM m.status AND m.status = 'failed'
                            THEN format('legacy status: %s', coalesce(m.legacy_status, 'NULL')) END,
                       CASE WHEN m.status <> 'sent' AND d.sent_at IS NOT NULL
                            THEN format('legacy sent_at: %s UTC', to_char(d.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')) END,
                       CASE WHEN m.status = 'failed' AND d.last_error IS NULL AND m.legacy_status = 'failed'
                            THEN 'legacy: failed before the v2 upgrade, no error recorded' END), '') AS last_error,
                   CASE WHEN m.status = 'sending' THEN greatest(d.attempts, 1) ELSE d.attempts END AS attempts,
                   CASE WHEN m.status = 'sending' THEN coalesce(d.claimed_at, now()) ELSE d.claimed_at END AS claimed_at,
                   CASE WHEN m.status = 'sending' THEN coalesce(d.lease_expires_at, now()) END AS lease_expires_at
              FROM mapped m
              JOIN user_alert_deliveries d ON d.id = m.id
             WHERE m.normalized
        )
        UPDATE user_alert_deliveries d
           SET status = f.status, sent_at = f.sent_at, last_error = f.last_error, attempts = f.attempts,
               claimed_at = f.claimed_at, lease_expires_at = f.lease_expires_at
          FROM fixed f
         WHERE d.id = f.id
           AND (d.status, d.sent_at, d.last_error, d.attempts, d.claimed_at, d.lease_expires_at)
               IS DISTINCT FROM (f.status, f.sent_at, f.last_error, f.attempts, f.claimed_at, f.lease_expires_at);
        COMMIT;
        from_id := to_id;
    END LOOP;
END
$$;

-- 6. Validation of the existing rows: SHARE UPDATE EXCLUSIVE, reads and writes go on.
SELECT alerts_legacy_validate('user_alert_deliveries',
                              ARRAY(SELECT conname FROM pg_constraint
                                     WHERE conrelid = 'user_alert_deliveries'::regclass
                                       AND conname LIKE 'user\_alert\_deliveries\_%'));

-- 7. The foreign key to alert_events becomes the engine's (ON DELETE CASCADE). A legacy
--    key without it is replaced: the new one is added NOT VALID (a short SHARE ROW
--    EXCLUSIVE lock), validated (SHARE UPDATE EXCLUSIVE), then swapped in by name.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'user_alert_deliveries'::regclass AND contype = 'f'
                      AND pg_get_constraintdef(oid) = 'FOREIGN KEY (alert_event_id) REFERENCES alert_events(id) ON DELETE CASCADE')
       AND NOT EXISTS (SELECT 1 FROM pg_constraint
                        WHERE conrelid = 'user_alert_deliveries'::regclass
                          AND conname = 'user_alert_deliveries_alert_event_id_cascade') THEN
        ALTER TABLE user_alert_deliveries
            ADD CONSTRAINT user_alert_deliveries_alert_event_id_cascade
            FOREIGN KEY (alert_event_id) REFERENCES alert_events (id) ON DELETE CASCADE NOT VALID;
    END IF;
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conrelid = 'user_alert_deliveries'::regclass
                  AND conname = 'user_alert_deliveries_alert_event_id_cascade' AND NOT convalidated) THEN
        ALTER TABLE user_alert_deliveries VALIDATE CONSTRAINT user_alert_deliveries_alert_event_id_cascade;
    END IF;
END
$$;
DO $$
DECLARE
    legacy_key name;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conrelid = 'user_alert_deliveries'::regclass
                  AND conname = 'user_alert_deliveries_alert_event_id_cascade') THEN
        FOR legacy_key IN
            SELECT conname FROM pg_constraint
             WHERE conrelid = 'user_alert_deliveries'::regclass AND contype = 'f'
               AND confrelid = 'alert_events'::regclass
               AND conname <> 'user_alert_deliveries_alert_event_id_cascade'
        LOOP
            EXECUTE format('ALTER TABLE user_alert_deliveries DROP CONSTRAINT %I', legacy_key);
        END LOOP;
        ALTER TABLE user_alert_deliveries RENAME CONSTRAINT user_alert_deliveries_alert_event_id_cascade
            TO user_alert_deliveries_alert_event_id_fkey;
    END IF;
END
$$;

\ir ../../functions/legacy_upgrade_steps_drop.sql
RESET client_min_messages;
RESET lock_timeout;
RESET timezone;
