-- Revert alerts_v2:legacy_merge_duplicates
-- Deliberately keeps everything: what this change did is data, not code. The columns
-- it added hold values the engine has written since; the legacy rows it changed (or,
-- for legacy_merge_duplicates, removed: they are in alerts_legacy_upgrade_log) belong
-- to the host's history. On a database engine_tables created there is nothing to undo.
-- After a full revert an adopted table stays as upgraded (docs/DBA.md, "Rolling back").
SELECT 'alerts_v2:legacy_merge_duplicates keeps the upgraded legacy data on revert' AS note;
