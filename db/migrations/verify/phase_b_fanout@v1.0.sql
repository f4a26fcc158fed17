-- Verify alerts_v2:phase_b_fanout
SELECT 'alerts_phase_b()'::regprocedure, 'alerts_analyze_if_stale()'::regprocedure;
