-- Revert alerts_v2:legacy_adopt
-- The log is dropped only while it is empty (a database that never had a pre-v2
-- installation). When it holds an adoption record or merged rows it is legacy data
-- and is kept, like the adopted tables themselves.
BEGIN;
SET LOCAL lock_timeout = '5s';
DO $$
BEGIN
    IF to_regclass('public.alerts_legacy_upgrade_log') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM alerts_legacy_upgrade_log) THEN
            DROP TABLE alerts_legacy_upgrade_log;
        END IF;
    END IF;
END
$$;
COMMIT;
