-- Deploy alerts_v2:legacy_adopt
-- Runs before engine_tables. Guarantees: alerts_legacy_upgrade_log exists, and when
-- alert_events or user_alert_deliveries already exist from a pre-v2 installation (a
-- table without event_fingerprint, resp. delivery_kind) the table is recorded there as
-- adopted before any change touches it. engine_tables' revert reads that record and
-- never drops an adopted table, so no revert (not even the automatic one Sqitch runs
-- after a failed deploy) can drop the host's alert history. Idempotent: a table is
-- recorded once; tables engine_tables created are never recorded.
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

INSERT INTO alerts_legacy_upgrade_log (kind, table_name)
SELECT 'adopted_table', legacy.table_name
  FROM (VALUES ('alert_events', 'event_fingerprint'),
               ('user_alert_deliveries', 'delivery_kind')) AS legacy (table_name, v2_column)
 WHERE to_regclass(format('public.%I', legacy.table_name)) IS NOT NULL
   AND NOT EXISTS (SELECT 1
                     FROM pg_attribute a
                    WHERE a.attrelid = to_regclass(format('public.%I', legacy.table_name))
                      AND a.attname = legacy.v2_column
                      AND NOT a.attisdropped)
   AND NOT EXISTS (SELECT 1
                     FROM alerts_legacy_upgrade_log l
                    WHERE l.kind = 'adopted_table' AND l.table_name = legacy.table_name);
COMMIT;
