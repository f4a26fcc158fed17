-- Revert alerts_v2:digests to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/digests@v1.2.sql
