-- Verify alerts_v2:phase_b_fanout (reworked after v1.3: unsubscribed users get no delivery on the channel)
SELECT 'alerts_analyze_if_stale()'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_b(integer,integer)'::regprocedure AND prosrc LIKE '%alerts_channel_optouts%';
SELECT 'alerts_phase_b(integer)'::regprocedure;
SELECT 'alerts_phase_b()'::regprocedure;
