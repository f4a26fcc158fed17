-- Verify alerts_v2:engine_tables
SELECT id, alert_type, scope_region, scope_assets, severity, headline, body,
       driver_event_ids, event_fingerprint, fanout_completed_at, created_at
  FROM alert_events WHERE false;
SELECT id, alert_event_id, user_id, channel, delivery_kind, status, attempts,
       next_retry_at, last_error, sent_at, provider_message_id, claimed_at, lease_expires_at, created_at
  FROM user_alert_deliveries WHERE false;
-- Exactly one configuration row (division by zero otherwise).
SELECT 1 / (count(*) = 1)::integer FROM alerts_config;
