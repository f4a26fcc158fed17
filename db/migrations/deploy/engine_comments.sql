-- Deploy alerts_v2:engine_comments
-- What each engine table and column holds, for \d+ and \dt+ in psql. Comments only: no lock
-- beyond a brief one per table, no data touched.
BEGIN;
SET LOCAL lock_timeout = '5s';

COMMENT ON TABLE alert_events IS
    'Global alert events made by Phase A (alerts_phase_a()), one per event_fingerprint; never tied to a user. Phase B fans each out to user_alert_deliveries.';
COMMENT ON COLUMN alert_events.alert_type IS 'HIGH_IMPACT_EVENT, REGIONAL_RISK_SPIKE or ASSET_RISK_SPIKE.';
COMMENT ON COLUMN alert_events.scope_region IS 'The region the alert is about; prefs match it or say global.';
COMMENT ON COLUMN alert_events.scope_assets IS 'The asset of an asset spike (one element); empty for other types.';
COMMENT ON COLUMN alert_events.severity IS '1-5: the event''s severity_score, or for a spike 5 at a score of 90+, 4 at 80+, else 3.';
COMMENT ON COLUMN alert_events.headline IS 'Message headline, at most 200 characters.';
COMMENT ON COLUMN alert_events.body IS 'Message text, at most 2,000 characters.';
COMMENT ON COLUMN alert_events.driver_event_ids IS 'The events rows behind a HIGH_IMPACT_EVENT; empty for spikes.';
COMMENT ON COLUMN alert_events.event_fingerprint IS 'Unique identity: HIGH_IMPACT_EVENT:{events.id}, REGIONAL_RISK_SPIKE:{region}:{day}, ASSET_RISK_SPIKE:{region}:{asset}:{day}; region and asset escaped by alerts_fingerprint_part().';
COMMENT ON COLUMN alert_events.fanout_completed_at IS 'When Phase B created the event''s deliveries; NULL until then. Never before created_at.';
COMMENT ON COLUMN alert_events.created_at IS 'When Phase A created the event.';
COMMENT ON COLUMN alert_events.risk_score IS 'A spike''s risk score (0-100) when it fired, compared with user_alert_prefs.threshold; NULL for HIGH_IMPACT_EVENT and for spikes stored before the column existed.';
COMMENT ON COLUMN alert_events.fired_on_rise IS 'Whether a regional spike''s rise rule held (it then reaches every threshold); false for asset spikes, NULL for HIGH_IMPACT_EVENT and older events.';

COMMENT ON TABLE user_alert_deliveries IS
    'One message to send per (alert event, user, channel, kind), made by Phase B, claimed and recorded by Phase C. The queue.';
COMMENT ON COLUMN user_alert_deliveries.alert_event_id IS 'The alert event to send (alert_events.id).';
COMMENT ON COLUMN user_alert_deliveries.user_id IS 'The recipient (users.id).';
COMMENT ON COLUMN user_alert_deliveries.channel IS 'email, telegram or sms.';
COMMENT ON COLUMN user_alert_deliveries.delivery_kind IS 'instant (sent alone by Phase C) or digest (gathered into alert_digests by Phase D).';
COMMENT ON COLUMN user_alert_deliveries.status IS 'queued, sending (claimed, under lease), sent, failed or skipped.';
COMMENT ON COLUMN user_alert_deliveries.attempts IS 'Claims so far; counted when claimed. At alerts_config.max_attempts a transient failure becomes failed.';
COMMENT ON COLUMN user_alert_deliveries.next_retry_at IS 'A queued row is not claimed before this time (backoff after a transient failure).';
COMMENT ON COLUMN user_alert_deliveries.last_error IS 'The last failure''s one-line reason, secrets masked.';
COMMENT ON COLUMN user_alert_deliveries.sent_at IS 'When the provider accepted it; set exactly when status is sent.';
COMMENT ON COLUMN user_alert_deliveries.provider_message_id IS 'The provider''s id of the sent message.';
COMMENT ON COLUMN user_alert_deliveries.claimed_at IS 'When the current or last claim took the row.';
COMMENT ON COLUMN user_alert_deliveries.lease_expires_at IS 'While sending: when reclaim_expired_deliveries() may take the row back.';
COMMENT ON COLUMN user_alert_deliveries.created_at IS 'When Phase B created the row; daily quotas count by its UTC day.';
COMMENT ON COLUMN user_alert_deliveries.digest_id IS 'The alert_digests row a digest delivery was gathered into.';

COMMENT ON TABLE alert_digests IS
    'One digest message per user, channel and window (daily or hourly, UTC), made by Phase D from digest deliveries and sent by Phase C.';
COMMENT ON COLUMN alert_digests.digest_key IS 'Unique identity: {user}:{channel}:{period}:{window start}, or ...:late:{time} for a late one.';
COMMENT ON COLUMN alert_digests.user_id IS 'The recipient (users.id).';
COMMENT ON COLUMN alert_digests.channel IS 'email, telegram or sms.';
COMMENT ON COLUMN alert_digests.period IS 'daily or hourly.';
COMMENT ON COLUMN alert_digests.window_start IS 'Start of the window the digest covers (UTC boundary).';
COMMENT ON COLUMN alert_digests.window_end IS 'End of the window, exclusive.';
COMMENT ON COLUMN alert_digests.status IS 'queued, sending, sent, failed or skipped, as for deliveries.';
COMMENT ON COLUMN alert_digests.attempts IS 'Claims so far.';
COMMENT ON COLUMN alert_digests.next_retry_at IS 'Not claimed before this time.';
COMMENT ON COLUMN alert_digests.last_error IS 'The last failure''s one-line reason, secrets masked.';
COMMENT ON COLUMN alert_digests.sent_at IS 'When the provider accepted it.';
COMMENT ON COLUMN alert_digests.provider_message_id IS 'The provider''s id of the sent message.';
COMMENT ON COLUMN alert_digests.claimed_at IS 'When the current or last claim took the row.';
COMMENT ON COLUMN alert_digests.lease_expires_at IS 'While sending: when reclaim_expired_digests() may take it back.';
COMMENT ON COLUMN alert_digests.created_at IS 'When Phase D created the digest.';

COMMENT ON TABLE alerts_config IS
    'The one row of tunables the phase functions read (README, Configuration). Change it with UPDATE.';
COMMENT ON COLUMN alerts_config.singleton IS 'Always true: the table holds one row.';
COMMENT ON COLUMN alerts_config.high_impact_min_severity IS 'Phase A: HIGH_IMPACT_EVENT fires at this severity_score or more.';
COMMENT ON COLUMN alerts_config.high_impact_lookback IS 'Phase A: how old an events row may be.';
COMMENT ON COLUMN alerts_config.spike_window_days IS 'Phase A: the risk_indices/asset_risk window read.';
COMMENT ON COLUMN alerts_config.spike_min_score IS 'Phase A: a spike fires at this score or more.';
COMMENT ON COLUMN alerts_config.spike_min_rise_pct IS 'Phase A: a regional spike also fires on this rise (percent) over the previous reading.';
COMMENT ON COLUMN alerts_config.spike_max_age IS 'Phase A: a newest risk reading older than this is ignored.';
COMMENT ON COLUMN alerts_config.fanout_lookback IS 'Phase B: older un-fanned events are left alone.';
COMMENT ON COLUMN alerts_config.max_attempts IS 'Phase C: a delivery that failed transiently this many times becomes failed.';
COMMENT ON COLUMN alerts_config.retry_base IS 'Phase C: the first retry''s wait; doubled per attempt.';
COMMENT ON COLUMN alerts_config.retry_max IS 'Phase C: the longest retry wait.';
COMMENT ON COLUMN alerts_config.retry_jitter_pct IS 'Phase C: up to this percentage is added to a retry wait at random.';
COMMENT ON COLUMN alerts_config.lease_duration IS 'Phase C: how long a claim may stay sending before it is reclaimed.';
COMMENT ON COLUMN alerts_config.digest_period IS 'Phase D: daily or hourly digest windows, UTC.';
COMMENT ON COLUMN alerts_config.digest_grace IS 'Phase D: a window is digested this long after it closed.';

COMMENT ON TABLE alerts_runs IS
    'One row per real phase run (not dry runs): its outcome and counts, read by alerts_status(); pruned by alerts_prune().';
COMMENT ON COLUMN alerts_runs.phase IS 'a, b, c or d.';
COMMENT ON COLUMN alerts_runs.status IS 'running, ok, skipped or failed; a run that died stays running.';
COMMENT ON COLUMN alerts_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN alerts_runs.finished_at IS 'When it finished; NULL while running.';
COMMENT ON COLUMN alerts_runs.counts IS 'The phase''s jsonb counts.';
COMMENT ON COLUMN alerts_runs.error IS 'A failed run''s one-line error, secrets masked.';

COMMENT ON TABLE alerts_legacy_upgrade_log IS
    'What the in-place upgrade of a pre-v2 installation did: adopted tables, merged duplicate rows (whole row as jsonb), deferred indexes (docs/DBA.md).';
COMMENT ON COLUMN alerts_legacy_upgrade_log.kind IS 'adopted_table, merged_row, deferred_index or dropped_not_null.';
COMMENT ON COLUMN alerts_legacy_upgrade_log.table_name IS 'The table concerned.';
COMMENT ON COLUMN alerts_legacy_upgrade_log.row_id IS 'A merged row''s id.';
COMMENT ON COLUMN alerts_legacy_upgrade_log.merged_into_id IS 'The id of the row it was merged into.';
COMMENT ON COLUMN alerts_legacy_upgrade_log.detail IS 'The merged row as jsonb, or the deferred index''s definition.';
COMMENT ON COLUMN alerts_legacy_upgrade_log.logged_at IS 'When it was logged.';
SELECT alerts_assign_owner();
COMMIT;
