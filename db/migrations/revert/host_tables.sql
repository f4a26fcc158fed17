-- Revert alerts_v2:host_tables
-- Deliberately empty: the host application owns these tables and their data.
-- Reverting the engine must never drop them (see CONTRACT.md).
SELECT 'host tables are kept on revert' AS note;
