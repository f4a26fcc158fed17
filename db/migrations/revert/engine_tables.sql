-- Revert alerts_v2:engine_tables
-- Drops the engine's tables, except those adopted from a pre-v2 installation (recorded
-- by legacy_adopt): they hold the host's alert history and are kept with every row.
BEGIN;
SET LOCAL lock_timeout = '5s';
DO $$
DECLARE
    engine_table text;
    adopted boolean;
BEGIN
    FOREACH engine_table IN ARRAY ARRAY['user_alert_deliveries', 'alert_events'] LOOP
        adopted := false;
        IF to_regclass('public.alerts_legacy_upgrade_log') IS NOT NULL THEN
            adopted := EXISTS (SELECT 1 FROM alerts_legacy_upgrade_log l
                                WHERE l.kind = 'adopted_table' AND l.table_name = engine_table);
        END IF;
        IF NOT adopted THEN
            EXECUTE format('DROP TABLE IF EXISTS %I', engine_table);
        END IF;
    END LOOP;
END
$$;
DROP TABLE IF EXISTS alerts_config;
COMMIT;
