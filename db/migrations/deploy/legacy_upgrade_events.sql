-- Deploy alerts_v2:legacy_upgrade_events
-- Brings an alert_events table adopted from a pre-v2 installation to the shape
-- engine_tables creates, in place. On a table engine_tables created, every step finds
-- nothing to do and takes no lock stronger than a read.
--
-- Guarantees once it has run:
--   * columns event_fingerprint and fanout_completed_at exist, without rewriting the
--     table; the host's column types are kept (integer ids, created_at without time
--     zone: the host application compares it with naive UTC datetimes, and the engine
--     reads and writes such columns as UTC), and a new fanout_completed_at gets
--     created_at's type;
--   * rows that existed before the upgrade count as fanned out (fanout_completed_at = the
--     time of the upgrade), so Phase B never sends an old alert again;
--   * every row has an event_fingerprint: the contract's rule where the alert type allows
--     it, else a stable 'legacy:' fallback; the column is NOT NULL;
--   * the engine's CHECK constraints hold and are validated;
--   * a legacy-only column that is NOT NULL without a default accepts NULL, so the
--     engine's INSERTs work (recorded in alerts_legacy_upgrade_log);
--   * no row is deleted here (legacy_merge_duplicates merges duplicates), and no legacy
--     column is dropped, renamed or retyped;
--   * the temporary CHECK standing for NOT NULL has a name of its own: PostgreSQL 18
--     names a column's NOT NULL constraint <table>_<column>_not_null, and dropping a
--     constraint of that name would drop the NOT NULL.
--
-- Safe on a large live table: this script has no BEGIN/COMMIT of its own, so each
-- statement is its own transaction. Strong locks (ALTER TABLE) are held only for
-- metadata changes, each within lock_timeout; the backfill commits every 5,000 rows;
-- VALIDATE runs under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on.
SET lock_timeout = '5s';
SET client_min_messages = warning;
-- Timestamps without time zone are UTC (the host's convention) in every comparison.
SET timezone = 'UTC';
\ir ../../functions/legacy_upgrade_steps.sql

-- 1. Missing columns. Metadata only: constant defaults are stored once, not written
--    into every row. fanout_completed_at is added with DEFAULT now() (STABLE: evaluated
--    once), which marks every existing row fanned out at the upgrade; the default is
--    dropped in the same transaction, so new rows start un-fanned.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'alert_events'::regclass AND attname = 'fanout_completed_at'
                      AND NOT attisdropped) THEN
        -- Of created_at's type, so that the two compare without a time zone conversion.
        EXECUTE format('ALTER TABLE alert_events ADD COLUMN fanout_completed_at %s DEFAULT now()',
                       (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                         WHERE attrelid = 'alert_events'::regclass AND attname = 'created_at'));
        ALTER TABLE alert_events ALTER COLUMN fanout_completed_at DROP DEFAULT;
    END IF;
    IF EXISTS (SELECT 1
                 FROM unnest(ARRAY['event_fingerprint', 'scope_assets', 'body', 'driver_event_ids']) AS v2 (attname)
                WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                   WHERE a.attrelid = 'alert_events'::regclass AND a.attname = v2.attname
                                     AND NOT a.attisdropped)) THEN
        ALTER TABLE alert_events
            ADD COLUMN IF NOT EXISTS event_fingerprint text,
            ADD COLUMN IF NOT EXISTS scope_assets text[] NOT NULL DEFAULT '{}',
            ADD COLUMN IF NOT EXISTS body text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS driver_event_ids bigint[] NOT NULL DEFAULT '{}';
    END IF;
END
$$;

-- 2. Legacy-only columns that are NOT NULL without a default (for example an old
--    cooldown_key) would make every engine INSERT fail: they accept NULL from now on.
--    Their values are kept; a UNIQUE constraint on them still holds (NULLs are distinct).
SELECT alerts_legacy_accept_null('alert_events', ARRAY['id', 'alert_type', 'scope_region', 'scope_assets', 'severity',
                                                      'headline', 'body', 'driver_event_ids', 'event_fingerprint',
                                                      'fanout_completed_at', 'created_at']);

-- 3. Column types are kept (see the header). An earlier version of this change turned
--    created_at into timestamptz, dropping the legacy indexes on it first and recording
--    them as 'deferred_index'; one it recorded and did not rebuild (a deploy interrupted
--    in between) is rebuilt here, CONCURRENTLY.
-- A rebuild that failed earlier left an INVALID index under the name: dropped, then built again.
SELECT alerts_legacy_invalid_index_drops('alert_events')
\gexec

-- CONCURRENTLY waits, without blocking anyone, for older transactions to finish.
SET lock_timeout = '10min';
SELECT alerts_legacy_deferred_index_builds('alert_events')
\gexec
SET lock_timeout = '5s';

-- 4. The engine's CHECK constraints, added NOT VALID: a short lock, and every new or
--    updated row is checked from now on (so no writer can add a row without a
--    fingerprint while the backfill runs). Existing rows are validated in step 6.
-- alert_events_event_fingerprint_present stands for NOT NULL until step 6 sets it (then it is
-- dropped); it is never named <table>_<column>_not_null, the name PostgreSQL 18 gives the
-- column's own NOT NULL constraint, and not added once the column is NOT NULL.
SELECT alerts_legacy_add_checks('alert_events', jsonb_build_object(
           'alert_events_alert_type_check', $c$CHECK (alert_type ~ '^[A-Z][A-Z_]*$')$c$,
           'alert_events_severity_check', 'CHECK (severity BETWEEN 1 AND 5)',
           'alert_events_fanout_after_creation', 'CHECK (fanout_completed_at >= created_at)')
       || CASE WHEN (SELECT attnotnull FROM pg_attribute
                      WHERE attrelid = 'alert_events'::regclass AND attname = 'event_fingerprint') THEN '{}'
               ELSE jsonb_build_object('alert_events_event_fingerprint_present', 'CHECK (event_fingerprint IS NOT NULL)')
          END);

-- 5. Fingerprints, 5,000 rows per committed batch (row locks only, each batch short).
--    Contract rules (CONTRACT.md):
--      HIGH_IMPACT_EVENT    with exactly one driver event    HIGH_IMPACT_EVENT:{events.id}
--      REGIONAL_RISK_SPIKE  with a region                    REGIONAL_RISK_SPIKE:{region}:{day}
--      ASSET_RISK_SPIKE     with a region and one asset      ASSET_RISK_SPIKE:{region}:{asset}:{day}
--    where {day} is the UTC date of the source row's calculated_at, as Phase A computes it:
--    the newest risk row of that region (and asset) with the configured window, calculated
--    at most spike_max_age before the alert; without one, the UTC date of created_at.
--    Any other row gets the stable fallback
--      legacy:{alert_type}:{region}:{UTC date of created_at}:{16 hex of sha256(assets, headline)}
--    so that two copies of one alert (same type, region, day, assets and headline) share it.
--    Fallbacks never collide with a fingerprint Phase A writes (those start with the type).
DO $$
DECLARE
    cfg alerts_config;
    batch_rows bigint;
BEGIN
    SELECT * INTO cfg FROM alerts_config;
    LOOP
        WITH batch AS (
            SELECT ae.id, ae.alert_type, btrim(ae.scope_region) AS region, ae.scope_assets,
                   ae.driver_event_ids, ae.headline, ae.created_at,
                   nullif(lower(btrim(ae.scope_assets[1])), '') AS asset
              FROM alert_events ae
             WHERE ae.event_fingerprint IS NULL
             ORDER BY ae.id
             LIMIT 5000
        ),
        regional_source AS (
            SELECT DISTINCT ON (b.id) b.id, ri.calculated_at::timestamptz AS calculated_at
              FROM batch b
              JOIN risk_indices ri
                ON btrim(ri.region) = b.region
               AND ri.window_days = cfg.spike_window_days
               AND ri.calculated_at::timestamptz <= b.created_at
               AND ri.calculated_at::timestamptz > b.created_at - cfg.spike_max_age
             WHERE b.alert_type = 'REGIONAL_RISK_SPIKE'
             ORDER BY b.id, ri.calculated_at DESC, ri.id DESC
        ),
        asset_source AS (
            SELECT DISTINCT ON (b.id) b.id, ar.calculated_at::timestamptz AS calculated_at
              FROM batch b
              JOIN asset_risk ar
                ON btrim(ar.region) = b.region
               AND lower(btrim(ar.asset)) = b.asset
               AND ar.window_days = cfg.spike_window_days
               AND ar.calculated_at::timestamptz <= b.created_at
               AND ar.calculated_at::timestamptz > b.created_at - cfg.spike_max_age
             WHERE b.alert_type = 'ASSET_RISK_SPIKE'
             ORDER BY b.id, ar.calculated_at DESC, ar.id DESC
        ),
        fingerprinted AS (
            SELECT b.id,
                   CASE
                       WHEN b.alert_type = 'HIGH_IMPACT_EVENT' AND cardinality(b.driver_event_ids) = 1
                           THEN 'HIGH_IMPACT_EVENT:' || b.driver_event_ids[1]
                       WHEN b.alert_type = 'REGIONAL_RISK_SPIKE' AND b.region <> ''
                           -- each part escaped as alerts_fingerprint_part() does (inline: it is deployed later)
                           THEN format('REGIONAL_RISK_SPIKE:%s:%s', replace(replace(b.region, '\', '\\'), ':', '\:'),
                                       to_char(coalesce(rs.calculated_at, b.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
                       WHEN b.alert_type = 'ASSET_RISK_SPIKE' AND b.region <> ''
                            AND cardinality(b.scope_assets) = 1 AND b.asset IS NOT NULL
                           THEN format('ASSET_RISK_SPIKE:%s:%s:%s', replace(replace(b.region, '\', '\\'), ':', '\:'),
                                       replace(replace(b.asset, '\', '\\'), ':', '\:'),
                                       to_char(coalesce(asr.calculated_at, b.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
                       ELSE format('legacy:%s:%s:%s:%s', b.alert_type, b.region,
                                   to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                                   left(encode(sha256(convert_to(array_to_string(b.scope_assets, ',') || E'\n'
                                                                 || b.headline, 'UTF8')), 'hex'), 16))
                   END AS event_fingerprint
              FROM batch b
              LEFT JOIN regional_source rs ON rs.id = b.id
              LEFT JOIN asset_source asr ON asr.id = b.id
        )
        UPDATE alert_events ae
           SET event_fingerprint = f.event_fingerprint
          FROM fingerprinted f
         WHERE ae.id = f.id;
        GET DIAGNOSTICS batch_rows = ROW_COUNT;
        COMMIT;
        EXIT WHEN batch_rows = 0;
    END LOOP;
END
$$;

-- 6. Validation of the existing rows (SHARE UPDATE EXCLUSIVE: reads and writes go on),
--    after making legacy rows satisfy the rules where that loses nothing: a row whose
--    created_at lies after the upgrade time counts as fanned out when it was created.
--    Then NOT NULL, which PostgreSQL proves from the validated CHECK without a scan.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conrelid = 'alert_events'::regclass AND conname = 'alert_events_fanout_after_creation'
                  AND NOT convalidated) THEN
        UPDATE alert_events SET fanout_completed_at = created_at WHERE fanout_completed_at < created_at;
    END IF;
END
$$;
SELECT alerts_legacy_validate('alert_events', ARRAY['alert_events_alert_type_check', 'alert_events_severity_check',
                                                   'alert_events_fanout_after_creation',
                                                   'alert_events_event_fingerprint_present']);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conrelid = 'alert_events'::regclass AND conname = 'alert_events_event_fingerprint_present'
                  AND contype = 'c' AND convalidated) THEN
        ALTER TABLE alert_events ALTER COLUMN event_fingerprint SET NOT NULL;
        ALTER TABLE alert_events DROP CONSTRAINT alert_events_event_fingerprint_present;
    END IF;
END
$$;

\ir ../../functions/legacy_upgrade_steps_drop.sql
RESET client_min_messages;
RESET lock_timeout;
RESET timezone;
