-- Verify alerts_v2:legacy_upgrade_deliveries
-- Catalog checks only (no table scan). Division by zero unless the timestamps share
-- one type, the engine's nine CHECKs are validated and the foreign key cascades.
SELECT id, alert_event_id, user_id, channel, delivery_kind, status, attempts,
       next_retry_at, last_error, sent_at, provider_message_id, claimed_at, lease_expires_at, created_at
  FROM user_alert_deliveries WHERE false;
-- created_at, sent_at and next_retry_at share one type: timestamptz as engine_tables
-- creates them, or the adopted table's timestamp (the claim queue's index needs one type).
SELECT 1 / (count(*) = 3 AND count(DISTINCT atttypid) = 1)::integer
  FROM pg_attribute
 WHERE attrelid = 'user_alert_deliveries'::regclass
   AND attname IN ('created_at', 'sent_at', 'next_retry_at')
   AND atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype);
SELECT 1 / (count(*) = 9)::integer
  FROM pg_constraint
 WHERE conrelid = 'user_alert_deliveries'::regclass AND contype = 'c' AND convalidated
   AND conname IN ('user_alert_deliveries_channel_check', 'user_alert_deliveries_delivery_kind_check',
                   'user_alert_deliveries_status_check', 'user_alert_deliveries_attempts_check',
                   'user_alert_deliveries_sent_has_sent_at', 'user_alert_deliveries_failed_has_error',
                   'user_alert_deliveries_sending_was_attempted', 'user_alert_deliveries_sending_has_lease',
                   'user_alert_deliveries_sending_was_claimed');
SELECT 1 / (count(*) = 1)::integer
  FROM pg_constraint
 WHERE conrelid = 'user_alert_deliveries'::regclass AND contype = 'f' AND convalidated
   AND conname = 'user_alert_deliveries_alert_event_id_fkey' AND confdeltype = 'c';
