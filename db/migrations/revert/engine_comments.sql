-- Revert alerts_v2:engine_comments
-- The comments this change wrote go: those of the engine's tables and of the columns it
-- described (a host's own columns on an adopted table keep theirs).
BEGIN;
SET LOCAL lock_timeout = '5s';
DO $$
DECLARE
    described record;
    column_name text;
BEGIN
    FOR described IN
        SELECT *
          FROM (VALUES
                       ('alert_events', ARRAY['alert_type', 'scope_region', 'scope_assets', 'severity', 'headline',
                                              'body', 'driver_event_ids', 'event_fingerprint', 'fanout_completed_at',
                                              'created_at', 'risk_score', 'fired_on_rise']),
                       ('user_alert_deliveries', ARRAY['alert_event_id', 'user_id', 'channel', 'delivery_kind',
                                                       'status', 'attempts', 'next_retry_at', 'last_error', 'sent_at',
                                                       'provider_message_id', 'claimed_at', 'lease_expires_at',
                                                       'claim_token', 'created_at', 'digest_id']),
                       ('alert_digests', ARRAY['digest_key', 'user_id', 'channel', 'period', 'window_start',
                                               'window_end', 'status', 'attempts', 'next_retry_at', 'last_error',
                                               'sent_at', 'provider_message_id', 'claimed_at', 'lease_expires_at',
                                               'claim_token', 'created_at']),
                       ('alerts_config', ARRAY['singleton', 'high_impact_min_severity', 'high_impact_lookback',
                                               'spike_window_days', 'spike_min_score', 'spike_min_rise_pct',
                                               'spike_max_age', 'fanout_lookback', 'max_attempts', 'retry_base',
                                               'retry_max', 'retry_jitter_pct', 'lease_duration', 'digest_period',
                                               'digest_grace']),
                       ('alerts_runs', ARRAY['phase', 'status', 'started_at', 'finished_at', 'counts', 'error']),
                       ('alerts_legacy_upgrade_log', ARRAY['kind', 'table_name', 'row_id', 'merged_into_id', 'detail',
                                                           'logged_at'])
               ) AS t (table_name, column_names)
    LOOP
        EXECUTE format('COMMENT ON TABLE %I IS NULL', described.table_name);
        FOREACH column_name IN ARRAY described.column_names LOOP
            EXECUTE format('COMMENT ON COLUMN %I.%I IS NULL', described.table_name, column_name);
        END LOOP;
    END LOOP;
END
$$;
COMMIT;
