-- Verify alerts_v2:legacy_adopt
-- Division by zero unless every table recorded as adopted still exists.
SELECT id, kind, table_name, row_id, merged_into_id, detail, logged_at FROM alerts_legacy_upgrade_log WHERE false;
SELECT 1 / (count(*) = 0)::integer
  FROM alerts_legacy_upgrade_log
 WHERE kind = 'adopted_table' AND to_regclass(format('public.%I', table_name)) IS NULL;
