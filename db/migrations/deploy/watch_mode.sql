-- Deploy alerts_v2:watch_mode
-- Watch mode (runner.py --watch): statement-level triggers that notify channel
-- alerts_v2_wake when source rows or deliveries arrive, the watchers' heartbeat table and
-- the functions a watcher calls. The triggers on the host's tables (events, risk_indices,
-- asset_risk) are the only objects the engine puts on them; revert removes them.
BEGIN;
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS alerts_watchers (
    name text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    status text NOT NULL DEFAULT 'running',
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    passes bigint NOT NULL DEFAULT 0,
    last_pass jsonb,
    last_error text,
    CONSTRAINT alerts_watchers_name_present CHECK (btrim(name) <> '' AND length(name) <= 200),
    CONSTRAINT alerts_watchers_status_known CHECK (status IN ('running', 'stopped')),
    CONSTRAINT alerts_watchers_stopped_has_time CHECK ((status = 'stopped') = (stopped_at IS NOT NULL)),
    CONSTRAINT alerts_watchers_passes_counted CHECK (passes >= 0)
);

\ir ../../functions/watch_notify.sql
\ir ../../functions/watchers.sql

-- One notification per statement (not per row), sent at commit.
CREATE OR REPLACE TRIGGER alerts_v2_notify_watchers
    AFTER INSERT OR UPDATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_notify_watchers('source');
CREATE OR REPLACE TRIGGER alerts_v2_notify_watchers
    AFTER INSERT OR UPDATE ON risk_indices
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_notify_watchers('source');
CREATE OR REPLACE TRIGGER alerts_v2_notify_watchers
    AFTER INSERT OR UPDATE ON asset_risk
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_notify_watchers('source');
-- After Phase B (or anyone) creates deliveries: wakes the watchers that may send them.
CREATE OR REPLACE TRIGGER alerts_v2_notify_watchers
    AFTER INSERT ON user_alert_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_notify_watchers('deliveries');

REVOKE ALL ON FUNCTION alerts_notify_watchers(), alerts_watcher_started(text, text, integer),
    alerts_watcher_beat(text, jsonb, text), alerts_watcher_stopped(text), alerts_next_wake(),
    alerts_watch_status(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_watcher_started(text, text, integer), alerts_watcher_beat(text, jsonb, text),
    alerts_watcher_stopped(text), alerts_next_wake(), alerts_watch_status(interval) TO alerts_runner;
GRANT SELECT ON alerts_watchers TO alerts_readonly;
GRANT EXECUTE ON FUNCTION alerts_watch_status(interval) TO alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
