-- Deploy alerts_v2:alert_events_spike_fields
-- What a spike fired on, for Phase B's threshold rule (a pref's threshold is a risk score):
-- risk_score, the score of the reading that fired (NULL for HIGH_IMPACT_EVENT), and
-- fired_on_rise, whether a regional spike's rise rule held (false for an asset spike, NULL for
-- HIGH_IMPACT_EVENT). Events stored before this change have NULL in both; Phase B lets such a
-- spike match every threshold (db/functions/phase_b_fanout.sql).
-- Both columns are added bare (no rewrite, no scan); their CHECKs are added NOT VALID and
-- validated, which reads the table without blocking its writers.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alert_events
    ADD COLUMN IF NOT EXISTS risk_score numeric,
    ADD COLUMN IF NOT EXISTS fired_on_rise boolean;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alert_events_risk_score_range') THEN
        ALTER TABLE alert_events ADD CONSTRAINT alert_events_risk_score_range
            CHECK (risk_score BETWEEN 0 AND 100) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alert_events_rise_only_for_regional_spikes') THEN
        ALTER TABLE alert_events ADD CONSTRAINT alert_events_rise_only_for_regional_spikes
            CHECK (fired_on_rise IS NOT TRUE OR alert_type = 'REGIONAL_RISK_SPIKE') NOT VALID;
    END IF;
END
$$;
COMMIT;

BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alert_events VALIDATE CONSTRAINT alert_events_risk_score_range;
ALTER TABLE alert_events VALIDATE CONSTRAINT alert_events_rise_only_for_regional_spikes;
SELECT alerts_assign_owner();
COMMIT;
