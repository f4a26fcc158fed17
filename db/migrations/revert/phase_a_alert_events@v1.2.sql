-- Revert alerts_v2:phase_a_alert_events to its @v1.1 version: that version's deploy script, frozen.
\ir ../deploy/phase_a_alert_events@v1.1.sql
