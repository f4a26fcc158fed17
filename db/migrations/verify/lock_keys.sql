-- Verify alerts_v2:lock_keys
-- Known value: the first 8 bytes of sha256('alerts_v2_phase_a').
SELECT 1 / (alerts_lock_key('alerts_v2_phase_a') IS NOT NULL)::integer;
SELECT alerts_lock_skipped('a');
SELECT 'alerts_settings()'::regprocedure;
