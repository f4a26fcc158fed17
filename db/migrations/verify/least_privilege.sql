-- Verify alerts_v2:least_privilege
SELECT max_claim_batch, min_retention, max_prune_batch, max_phase_silence FROM alerts_config WHERE false;
SELECT 1 / (NOT has_function_privilege('public', 'alerts_settings()', 'EXECUTE'))::integer;
SELECT 1 / (NOT has_function_privilege('public', 'alerts_user_destination(users, text)', 'EXECUTE'))::integer;
