-- Revert alerts_v2:run_history to its @v1.0 version: that version's deploy script, frozen.
\ir ../deploy/run_history@v1.0.sql
