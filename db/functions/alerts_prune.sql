-- Retention: deletes finished history in small batches so that no statement holds
-- many row locks or runs long; call it until it returns 0 (runner.py --prune does).
CREATE OR REPLACE FUNCTION alerts_prune(older_than interval, batch integer DEFAULT 5000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: deletes at most batch deliveries that are 'sent' or 'skipped' and at most
-- batch finished runs, all created before now() - older_than; never a queued, sending or
-- failed delivery, never an alert event (their fingerprints keep Phase A idempotent), and
-- only the engine's own deliveries: kinds 'instant' and 'digest' on its channels (on a
-- table adopted from a host application, rows of the host's kinds and channels, for
-- example index digests or alerts shown in a web account, are the host's history).
-- Lock: row locks of the DELETEs.
DECLARE
    deliveries_deleted integer;
    runs_deleted integer;
BEGIN
    IF older_than IS NULL OR older_than < interval '1 hour' OR batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'alerts_prune: older_than must be at least 1 hour and batch positive, got % and %',
            older_than, batch USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH old_deliveries AS (
        SELECT d.id FROM user_alert_deliveries d
         WHERE d.status IN ('sent', 'skipped') AND d.created_at < now() - older_than
           AND d.delivery_kind IN ('instant', 'digest') AND d.channel IN ('email', 'telegram', 'sms')
         ORDER BY d.id LIMIT batch
    )
    DELETE FROM user_alert_deliveries d USING old_deliveries o WHERE d.id = o.id;
    GET DIAGNOSTICS deliveries_deleted = ROW_COUNT;

    WITH old_runs AS (
        SELECT r.id FROM alerts_runs r
         WHERE r.status <> 'running' AND r.started_at < now() - older_than
         ORDER BY r.id LIMIT batch
    )
    DELETE FROM alerts_runs r USING old_runs o WHERE r.id = o.id;
    GET DIAGNOSTICS runs_deleted = ROW_COUNT;
    RETURN deliveries_deleted + runs_deleted;
END;
$$;
COMMENT ON FUNCTION alerts_prune(interval, integer) IS
    'Deletes up to batch sent/skipped deliveries of the engine''s kinds and channels and finished runs older than older_than; returns how many rows it deleted. Repeat until 0. Example: SELECT alerts_prune(''90 days'', 5000);';
