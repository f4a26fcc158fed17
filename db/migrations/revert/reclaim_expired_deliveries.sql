-- Revert alerts_v2:reclaim_expired_deliveries to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/reclaim_expired_deliveries@v1.2.sql
