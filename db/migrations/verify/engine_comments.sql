-- Verify alerts_v2:engine_comments
-- Division by zero unless every engine table, and the columns this change added last, have a comment.
SELECT 1 / (count(*) = 0)::integer
  FROM unnest(ARRAY['alert_events', 'user_alert_deliveries', 'alert_digests', 'alerts_config', 'alerts_runs',
                    'alerts_legacy_upgrade_log']) AS t (table_name)
 WHERE obj_description(to_regclass(t.table_name), 'pg_class') IS NULL;
SELECT 1 / count(*) FROM pg_attribute
 WHERE attrelid = 'alert_events'::regclass AND attname = 'fired_on_rise'
   AND col_description(attrelid, attnum) IS NOT NULL;
