-- Verify alerts_v2:engine_comments
-- Division by zero unless every column of the engine tables has a comment.
SELECT 1 / (count(*) = 0)::integer
  FROM pg_attribute a
 WHERE a.attrelid IN ('alert_events'::regclass, 'user_alert_deliveries'::regclass, 'alert_digests'::regclass,
                      'alerts_config'::regclass, 'alerts_runs'::regclass)
   AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'id'
   AND col_description(a.attrelid, a.attnum) IS NULL;
