-- Deploy alerts_v2:roles
-- Least privilege. alerts_runner may only EXECUTE the engine's functions (all
-- SECURITY DEFINER with a pinned search_path), never touch a table directly;
-- alerts_readonly may read the engine's tables and its status, for dashboards.
-- Grant them to login roles: GRANT alerts_runner TO cron_user;
-- Roles are cluster-wide: created when missing, never dropped by revert.
BEGIN;
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['alerts_runner', 'alerts_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a concurrent deploy into another database
            END;
        END IF;
    END LOOP;
END
$$;

-- PostgreSQL lets PUBLIC execute every new function: take that back for all of ours, and let
-- alerts_runner execute them. A function a later change replaced by another signature (the
-- fenced outcome functions) is passed over when this script runs again after that change:
-- that change grants its own.
GRANT USAGE ON SCHEMA public TO alerts_runner, alerts_readonly;
DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'alerts_phase_a()', 'alerts_phase_b()', 'alerts_analyze_if_stale()',
        'claim_deliveries(integer)', 'claim_deliveries(integer, text[])', 'count_due_deliveries(integer, text[])',
        'mark_deliveries_sent(bigint[], text[])', 'mark_deliveries_failed(bigint[], text[])',
        'mark_deliveries_skipped(bigint[], text[])', 'requeue_deliveries(bigint[], text[])',
        'release_deliveries(bigint[])', 'reclaim_expired_deliveries()', 'alerts_retry_delay(integer)',
        'alerts_run_started(text)', 'alerts_run_finished(bigint, text, jsonb, text)',
        'alerts_status()', 'alerts_prune(interval, integer)'] LOOP
        CONTINUE WHEN to_regprocedure(signature) IS NULL;
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', to_regprocedure(signature));
        CONTINUE WHEN signature = 'alerts_analyze_if_stale()';
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO alerts_runner', to_regprocedure(signature));
    END LOOP;
END
$$;

GRANT SELECT ON alert_events, user_alert_deliveries, alerts_runs, alerts_config TO alerts_readonly;
GRANT EXECUTE ON FUNCTION alerts_status(), count_due_deliveries(integer, text[]) TO alerts_readonly;
COMMIT;
