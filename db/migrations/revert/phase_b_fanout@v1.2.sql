-- Revert alerts_v2:phase_b_fanout to its @v1.1 version: that version's deploy script, frozen.
\ir ../deploy/phase_b_fanout@v1.1.sql
-- The chunked fanout alerts_phase_b(max_events) is new in this version: the @v1.1 alerts_phase_b()
-- above no longer calls it.
DROP FUNCTION IF EXISTS alerts_phase_b(integer);
