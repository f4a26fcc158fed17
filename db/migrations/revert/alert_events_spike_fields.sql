-- Revert alerts_v2:alert_events_spike_fields
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alert_events
    DROP CONSTRAINT IF EXISTS alert_events_risk_score_range,
    DROP CONSTRAINT IF EXISTS alert_events_rise_only_for_regional_spikes,
    DROP COLUMN IF EXISTS risk_score,
    DROP COLUMN IF EXISTS fired_on_rise;
COMMIT;
