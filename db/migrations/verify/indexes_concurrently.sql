-- Verify alerts_v2:indexes_concurrently
-- Division by zero unless both unique keys are constraints and all seven indexes exist and are valid.
SELECT 1 / (count(*) = 2)::integer
  FROM pg_constraint
 WHERE contype = 'u'
   AND ((conrelid = 'alert_events'::regclass AND conname = 'alert_events_event_fingerprint_key')
     OR (conrelid = 'user_alert_deliveries'::regclass AND conname = 'user_alert_deliveries_unique_key'));
SELECT 1 / (count(*) = 7)::integer
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indisvalid AND i.indisready
   AND i.indrelid IN ('alert_events'::regclass, 'user_alert_deliveries'::regclass)
   AND c.relname IN ('alert_events_event_fingerprint_key', 'user_alert_deliveries_unique_key',
                     'alert_events_unfanned_idx', 'user_alert_deliveries_queued_idx',
                     'user_alert_deliveries_sending_idx', 'user_alert_deliveries_failed_idx',
                     'user_alert_deliveries_user_day_idx');
