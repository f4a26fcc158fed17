-- The helpers of legacy_upgrade_steps.sql go once an upgrade script is done with them.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_legacy_accept_null(regclass, name[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_legacy_invalid_index_drops(regclass);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_legacy_deferred_index_builds(regclass);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_legacy_add_checks(regclass, jsonb);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS alerts_legacy_validate(regclass, name[]);
