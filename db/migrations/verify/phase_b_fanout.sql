-- Verify alerts_v2:phase_b_fanout (reworked after v1.3: unsubscribed users get no delivery on the channel;
-- the eligibility rules are the shared alerts_rule_* functions)
SELECT 'alerts_analyze_if_stale()'::regprocedure;
SELECT 1 / count(*) FROM pg_proc
 WHERE oid = 'alerts_phase_b(integer,integer)'::regprocedure AND prosrc LIKE '%alerts_channel_optouts%'
   AND prosrc LIKE '%alerts_rule_region(%' AND prosrc LIKE '%alerts_plan_channels()%';
SELECT 'alerts_phase_b(integer)'::regprocedure;
SELECT 'alerts_phase_b()'::regprocedure;
