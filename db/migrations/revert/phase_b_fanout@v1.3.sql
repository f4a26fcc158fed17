-- Revert alerts_v2:phase_b_fanout to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/phase_b_fanout@v1.2.sql
-- The bounded step alerts_phase_b(max_events, max_rows) is new in this version: the @v1.2
-- alerts_phase_b(max_events) above no longer calls it.
DROP FUNCTION IF EXISTS alerts_phase_b(integer, integer);
