-- Revert alerts_v2:phase_b_fanout to its @v1.3 version: that version's deploy script, frozen.
\ir ../deploy/phase_b_fanout@v1.3.sql
