-- Revert alerts_v2:claim_deliveries to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/claim_deliveries@v1.2.sql
