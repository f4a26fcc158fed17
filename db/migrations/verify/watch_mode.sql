-- Verify alerts_v2:watch_mode
SELECT name, host, pid, status, started_at, heartbeat_at, stopped_at, passes, last_pass, last_error
  FROM alerts_watchers WHERE false;
SELECT alerts_next_wake(), alerts_watch_status();
SELECT 'alerts_watcher_started(text, text, integer)'::regprocedure, 'alerts_watcher_beat(text, jsonb, text)'::regprocedure,
       'alerts_watcher_stopped(text)'::regprocedure;
-- Division by zero unless all four notify triggers exist.
SELECT 1 / (count(*) = 4)::integer
  FROM pg_trigger
 WHERE tgname = 'alerts_v2_notify_watchers' AND tgfoid = 'alerts_notify_watchers()'::regprocedure
   AND tgrelid IN ('events'::regclass, 'risk_indices'::regclass, 'asset_risk'::regclass,
                   'user_alert_deliveries'::regclass);
