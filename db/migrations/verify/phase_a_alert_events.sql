-- Verify alerts_v2:phase_a_alert_events (reworked after v1.2: readings compared as stored, indexed)
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_a()'::regprocedure AND prosrc LIKE '%fired_on_rise%'
   AND prosrc LIKE '%(p.calculated_at, p.id) < (nr.calculated_at, nr.id)%';
