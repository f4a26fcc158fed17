-- Retention: deletes finished history in small batches so that no statement holds
-- many row locks or runs long; call it until it returns 0 (runner.py --prune does).
CREATE OR REPLACE FUNCTION alerts_prune(older_than interval, batch integer DEFAULT 5000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: refuses a retention shorter than alerts_config.min_retention (the owner's floor,
-- at least a day: a runner login cannot delete today's sends and so reset a daily quota or a
-- digest window); deletes at most least(batch, alerts_config.max_prune_batch) deliveries that
-- are 'sent' or 'skipped' and at most that many finished runs, all created before now() - older_than; never a queued, sending or
-- failed delivery, never an alert event (their fingerprints keep Phase A idempotent), and
-- only the engine's own deliveries: kinds 'instant' and 'digest' on its channels (on a
-- table adopted from a host application, rows of the host's kinds and channels, for
-- example index digests or alerts shown in a web account, are the host's history).
-- Lock: row locks of the DELETEs.
DECLARE
    cfg alerts_config := (SELECT c FROM alerts_config c);
    deliveries_deleted integer;
    runs_deleted integer;
BEGIN
    IF older_than IS NULL OR older_than < cfg.min_retention THEN
        RAISE EXCEPTION 'alerts_prune: older_than must be at least alerts_config.min_retention (%), got %',
            cfg.min_retention, coalesce(older_than::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'alerts_prune: batch must be a positive integer, got %', coalesce(batch::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    batch := least(batch, cfg.max_prune_batch);
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
    'Deletes up to batch (at most alerts_config.max_prune_batch) sent/skipped deliveries of the engine''s kinds and channels and finished runs older than older_than (at least alerts_config.min_retention, else refused); returns how many rows it deleted. Repeat until 0. Example: SELECT alerts_prune(''90 days'', 5000);';
