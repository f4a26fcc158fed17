-- Verify alerts_v2:alert_events_spike_fields
SELECT risk_score, fired_on_rise FROM alert_events WHERE false;
SELECT 1 / count(*) FROM pg_constraint
 WHERE conname = 'alert_events_risk_score_range' AND convalidated;
