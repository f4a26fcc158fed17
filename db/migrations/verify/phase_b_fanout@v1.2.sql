-- Verify alerts_v2:phase_b_fanout (reworked after v1.1: thresholds compare risk scores; max_events)
SELECT 'alerts_analyze_if_stale()'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_b(integer)'::regprocedure AND prosrc LIKE '%pe.risk_score >= p.threshold%';
SELECT 'alerts_phase_b()'::regprocedure;
