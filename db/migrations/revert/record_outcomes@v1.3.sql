-- Revert alerts_v2:record_outcomes to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/record_outcomes@v1.2.sql
