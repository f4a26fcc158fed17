-- Watch mode's wake-up calls: a statement-level trigger function that tells listening
-- watchers (`runner.py --watch`) that rows arrived. One pg_notify per statement, never
-- per row; PostgreSQL folds identical notifications of one transaction into one and
-- delivers them at commit, so a burst of rows costs a few notifications. Best-effort by
-- design: a watcher that misses one still finds the rows on its poll.
CREATE OR REPLACE FUNCTION alerts_notify_watchers()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes no row; queues one notification on channel alerts_v2_wake whose payload
-- is the trigger's first argument ('source' or 'deliveries'), sent when the transaction commits.
-- Lock: none.
BEGIN
    PERFORM pg_notify('alerts_v2_wake', coalesce(TG_ARGV[0], 'source'));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION alerts_notify_watchers() IS
    'Statement trigger: notifies channel alerts_v2_wake that source rows or deliveries arrived. Example: SELECT tgname FROM pg_trigger WHERE tgfoid = ''alerts_notify_watchers()''::regprocedure;';
