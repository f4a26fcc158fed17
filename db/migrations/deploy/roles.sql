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

-- PostgreSQL lets PUBLIC execute every new function: take that back for all of ours.
REVOKE ALL ON FUNCTION
    alerts_phase_a(), alerts_phase_b(), alerts_analyze_if_stale(),
    claim_deliveries(integer), claim_deliveries(integer, text[]), count_due_deliveries(integer, text[]),
    mark_deliveries_sent(bigint[], text[]), mark_deliveries_failed(bigint[], text[]),
    mark_deliveries_skipped(bigint[], text[]), requeue_deliveries(bigint[], text[]),
    release_deliveries(bigint[]), reclaim_expired_deliveries(), alerts_retry_delay(integer),
    alerts_run_started(text), alerts_run_finished(bigint, text, jsonb, text),
    alerts_status(), alerts_prune(interval, integer)
FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO alerts_runner, alerts_readonly;
GRANT EXECUTE ON FUNCTION
    alerts_phase_a(), alerts_phase_b(),
    claim_deliveries(integer), claim_deliveries(integer, text[]), count_due_deliveries(integer, text[]),
    mark_deliveries_sent(bigint[], text[]), mark_deliveries_failed(bigint[], text[]),
    mark_deliveries_skipped(bigint[], text[]), requeue_deliveries(bigint[], text[]),
    release_deliveries(bigint[]), reclaim_expired_deliveries(), alerts_retry_delay(integer),
    alerts_run_started(text), alerts_run_finished(bigint, text, jsonb, text),
    alerts_status(), alerts_prune(interval, integer)
TO alerts_runner;

GRANT SELECT ON alert_events, user_alert_deliveries, alerts_runs, alerts_config TO alerts_readonly;
GRANT EXECUTE ON FUNCTION alerts_status(), count_due_deliveries(integer, text[]) TO alerts_readonly;
COMMIT;
