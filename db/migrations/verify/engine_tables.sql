-- Verify alerts_v2:engine_tables
-- The columns of the tables this change created (fails: column does not exist). A table
-- adopted from a pre-v2 installation gets its v2 columns from the legacy_upgrade_*
-- changes that follow, whose verify scripts check them.
DO $$
DECLARE
    adopted text[] := ARRAY(SELECT table_name FROM alerts_legacy_upgrade_log WHERE kind = 'adopted_table');
BEGIN
    IF NOT 'alert_events' = ANY (adopted) THEN
        PERFORM id, alert_type, scope_region, scope_assets, severity, headline, body,
                driver_event_ids, event_fingerprint, fanout_completed_at, created_at
           FROM alert_events WHERE false;
    END IF;
    IF NOT 'user_alert_deliveries' = ANY (adopted) THEN
        PERFORM id, alert_event_id, user_id, channel, delivery_kind, status, attempts,
                next_retry_at, last_error, sent_at, provider_message_id, claimed_at, lease_expires_at, created_at
           FROM user_alert_deliveries WHERE false;
    END IF;
END
$$;
-- Exactly one configuration row (division by zero otherwise).
SELECT 1 / (count(*) = 1)::integer FROM alerts_config;
