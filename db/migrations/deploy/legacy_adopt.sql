-- Deploy alerts_v2:legacy_adopt
-- Runs before engine_tables. Guarantees: alerts_legacy_upgrade_log exists, and when
-- alert_events or user_alert_deliveries already exist from a pre-v2 installation the
-- table is recorded there as adopted before any change touches it. engine_tables'
-- revert reads that record and never drops an adopted table, so no revert (not even
-- the automatic one Sqitch runs after a failed deploy) can drop the host's alert
-- history. Idempotent: a table is recorded once; tables engine_tables created are
-- never recorded.
--
-- What counts as pre-v2 is decided by what only engine_tables creates, never by the
-- columns (a pre-v2 installation may have every v2 column, event_fingerprint and
-- delivery_kind included): user_alert_deliveries is pre-v2 unless it carries the
-- engine's validated CHECK user_alert_deliveries_sending_has_lease; alert_events is
-- pre-v2 unless it carries the validated alert_events_fanout_after_creation, or when
-- the deliveries beside it are pre-v2 (one installation made both). A table an earlier,
-- interrupted upgrade left half-done (the CHECK added NOT VALID) still counts as pre-v2.
-- Lock: ACCESS SHARE on the catalog rows read; the log is this change's own table.
BEGIN;
SET LOCAL lock_timeout = '5s';

-- The legacy upgrade's record: adopted tables, every duplicate row merged away (the
-- whole row, as jsonb) and legacy indexes rebuilt around a column type change.
CREATE TABLE IF NOT EXISTS alerts_legacy_upgrade_log (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('adopted_table', 'merged_row', 'deferred_index', 'dropped_not_null')),
    table_name text NOT NULL,
    row_id bigint,
    merged_into_id bigint,
    detail jsonb,
    logged_at timestamptz NOT NULL DEFAULT now()
);

WITH engine_marks AS (
    SELECT legacy.table_name,
           to_regclass(format('public.%I', legacy.table_name)) AS table_oid,
           legacy.engine_check
      FROM (VALUES ('alert_events', 'alert_events_fanout_after_creation'),
                   ('user_alert_deliveries', 'user_alert_deliveries_sending_has_lease'))
           AS legacy (table_name, engine_check)
),
pre_v2_tables AS (
    SELECT m.table_name, m.table_oid,
           NOT EXISTS (SELECT 1 FROM pg_constraint c
                        WHERE c.conrelid = m.table_oid AND c.conname = m.engine_check
                          AND c.contype = 'c' AND c.convalidated) AS pre_v2
      FROM engine_marks m
     WHERE m.table_oid IS NOT NULL
)
INSERT INTO alerts_legacy_upgrade_log (kind, table_name)
SELECT 'adopted_table', t.table_name
  FROM pre_v2_tables t
 WHERE (t.pre_v2
        OR (t.table_name = 'alert_events'
            AND EXISTS (SELECT 1 FROM pre_v2_tables d WHERE d.table_name = 'user_alert_deliveries' AND d.pre_v2)))
   AND NOT EXISTS (SELECT 1
                     FROM alerts_legacy_upgrade_log l
                    WHERE l.kind = 'adopted_table' AND l.table_name = t.table_name)
 ORDER BY t.table_name;
COMMIT;
