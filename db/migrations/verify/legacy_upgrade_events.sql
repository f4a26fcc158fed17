-- Verify alerts_v2:legacy_upgrade_events
-- Catalog checks only (no table scan). Division by zero unless the columns have the
-- engine's types (or the adopted table's timestamps), event_fingerprint is NOT NULL and the engine's CHECKs are validated.
SELECT id, alert_type, scope_region, scope_assets, severity, headline, body,
       driver_event_ids, event_fingerprint, fanout_completed_at, created_at
  FROM alert_events WHERE false;
-- created_at and fanout_completed_at: timestamptz as engine_tables creates them, or both
-- the adopted table's timestamp (the host's type, kept).
SELECT 1 / (count(*) = 3 AND count(DISTINCT atttypid) FILTER (WHERE attname <> 'event_fingerprint') = 1)::integer
  FROM pg_attribute
 WHERE attrelid = 'alert_events'::regclass
   AND ((attname = 'event_fingerprint' AND attnotnull)
     OR (attname IN ('created_at', 'fanout_completed_at')
         AND atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype)));
SELECT 1 / (count(*) = 3)::integer
  FROM pg_constraint
 WHERE conrelid = 'alert_events'::regclass AND contype = 'c' AND convalidated
   AND conname IN ('alert_events_alert_type_check', 'alert_events_severity_check',
                   'alert_events_fanout_after_creation');
