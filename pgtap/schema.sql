-- Schema: the engine's tables and columns have the types CONTRACT.md names, the two
-- UNIQUE keys exist, the host input columns the engine reads exist, and every public
-- function exists with its signature and carries a COMMENT for DBAs in psql.
BEGIN;
SELECT plan(112);

-- Engine tables.
SELECT has_table('alert_events', 'alert_events exists');
SELECT has_table('user_alert_deliveries', 'user_alert_deliveries exists');
SELECT has_table('alerts_config', 'alerts_config exists');

-- alert_events: global, never has a user_id.
SELECT col_type_is('alert_events', 'id', 'bigint', 'alert_events.id is bigint');
SELECT col_type_is('alert_events', 'alert_type', 'text', 'alert_events.alert_type is text');
SELECT col_type_is('alert_events', 'scope_region', 'text', 'alert_events.scope_region is text');
SELECT col_type_is('alert_events', 'scope_assets', 'text[]', 'alert_events.scope_assets is text[]');
SELECT col_type_is('alert_events', 'severity', 'integer', 'alert_events.severity is integer');
SELECT col_type_is('alert_events', 'headline', 'text', 'alert_events.headline is text');
SELECT col_type_is('alert_events', 'body', 'text', 'alert_events.body is text');
SELECT col_type_is('alert_events', 'driver_event_ids', 'bigint[]', 'alert_events.driver_event_ids is bigint[]');
SELECT col_type_is('alert_events', 'event_fingerprint', 'text', 'alert_events.event_fingerprint is text');
SELECT col_not_null('alert_events', 'event_fingerprint', 'alert_events.event_fingerprint is NOT NULL');
SELECT col_type_is('alert_events', 'fanout_completed_at', 'timestamp with time zone',
                   'alert_events.fanout_completed_at is timestamptz');
SELECT col_is_null('alert_events', 'fanout_completed_at', 'alert_events.fanout_completed_at is nullable');
SELECT col_type_is('alert_events', 'created_at', 'timestamp with time zone', 'alert_events.created_at is timestamptz');
SELECT hasnt_column('alert_events', 'user_id', 'alert_events has no user_id (events are global)');
SELECT col_is_pk('alert_events', 'id', 'alert_events.id is the primary key');
SELECT col_is_unique('alert_events', ARRAY['event_fingerprint'], 'alert_events has UNIQUE (event_fingerprint)');

-- user_alert_deliveries.
SELECT col_type_is('user_alert_deliveries', 'id', 'bigint', 'user_alert_deliveries.id is bigint');
SELECT col_type_is('user_alert_deliveries', 'alert_event_id', 'bigint', 'user_alert_deliveries.alert_event_id is bigint');
SELECT col_type_is('user_alert_deliveries', 'user_id', 'bigint', 'user_alert_deliveries.user_id is bigint');
SELECT col_type_is('user_alert_deliveries', 'channel', 'text', 'user_alert_deliveries.channel is text');
SELECT col_type_is('user_alert_deliveries', 'delivery_kind', 'text', 'user_alert_deliveries.delivery_kind is text');
SELECT col_not_null('user_alert_deliveries', 'delivery_kind', 'user_alert_deliveries.delivery_kind is NOT NULL');
SELECT col_default_is('user_alert_deliveries', 'delivery_kind', 'instant', 'delivery_kind defaults to instant');
SELECT col_type_is('user_alert_deliveries', 'status', 'text', 'user_alert_deliveries.status is text');
SELECT col_not_null('user_alert_deliveries', 'status', 'user_alert_deliveries.status is NOT NULL');
SELECT col_default_is('user_alert_deliveries', 'status', 'queued', 'status defaults to queued');
SELECT col_type_is('user_alert_deliveries', 'attempts', 'integer', 'user_alert_deliveries.attempts is integer');
SELECT col_not_null('user_alert_deliveries', 'attempts', 'user_alert_deliveries.attempts is NOT NULL');
SELECT col_default_is('user_alert_deliveries', 'attempts', 0, 'attempts defaults to 0');
SELECT col_type_is('user_alert_deliveries', 'next_retry_at', 'timestamp with time zone',
                   'user_alert_deliveries.next_retry_at is timestamptz');
SELECT col_type_is('user_alert_deliveries', 'last_error', 'text', 'user_alert_deliveries.last_error is text');
SELECT col_type_is('user_alert_deliveries', 'sent_at', 'timestamp with time zone',
                   'user_alert_deliveries.sent_at is timestamptz');
SELECT col_type_is('user_alert_deliveries', 'provider_message_id', 'text',
                   'user_alert_deliveries.provider_message_id is text');
SELECT col_type_is('user_alert_deliveries', 'created_at', 'timestamp with time zone',
                   'user_alert_deliveries.created_at is timestamptz');
SELECT col_type_is('user_alert_deliveries', 'claimed_at', 'timestamp with time zone',
                   'user_alert_deliveries.claimed_at is timestamptz');
SELECT col_type_is('user_alert_deliveries', 'lease_expires_at', 'timestamp with time zone',
                   'user_alert_deliveries.lease_expires_at is timestamptz');
SELECT col_is_pk('user_alert_deliveries', 'id', 'user_alert_deliveries.id is the primary key');
SELECT col_is_unique('user_alert_deliveries', ARRAY['alert_event_id', 'user_id', 'channel', 'delivery_kind'],
                     'user_alert_deliveries has UNIQUE (alert_event_id, user_id, channel, delivery_kind)');
SELECT fk_ok('user_alert_deliveries', 'alert_event_id', 'alert_events', 'id',
             'user_alert_deliveries.alert_event_id references alert_events.id');
SELECT has_index('user_alert_deliveries', 'user_alert_deliveries_queued_idx',
                 'the claim queue has its partial index');

-- alerts_config: one row of tunables, read by the phase functions.
SELECT col_is_pk('alerts_config', 'singleton', 'alerts_config is keyed by its singleton column');
SELECT is((SELECT count(*) FROM alerts_config), 1::bigint, 'alerts_config holds exactly one row');
SELECT col_type_is('alerts_config', 'high_impact_min_severity', 'integer', 'alerts_config.high_impact_min_severity is integer');
SELECT col_type_is('alerts_config', 'spike_min_score', 'numeric', 'alerts_config.spike_min_score is numeric');
SELECT col_type_is('alerts_config', 'spike_min_rise_pct', 'numeric', 'alerts_config.spike_min_rise_pct is numeric');
SELECT col_type_is('alerts_config', 'max_attempts', 'integer', 'alerts_config.max_attempts is integer');
SELECT col_type_is('alerts_config', 'retry_base', 'interval', 'alerts_config.retry_base is interval');
SELECT col_type_is('alerts_config', 'lease_duration', 'interval', 'alerts_config.lease_duration is interval');

-- Host input columns the engine reads (CONTRACT.md, "Tables the host application owns").
SELECT col_type_is('users', 'email_verified', 'boolean', 'users.email_verified is boolean');
SELECT col_is_null('users', 'email_verified', 'users.email_verified is nullable (NULL = unknown)');
SELECT has_column('users', 'telegram_chat_id', 'users.telegram_chat_id exists');
SELECT has_column('users', 'phone_number', 'users.phone_number exists');
SELECT has_column('user_plans', 'plan', 'user_plans.plan exists');
SELECT col_type_is('plan_settings', 'allowed_alert_types', 'text[]', 'plan_settings.allowed_alert_types is text[]');
SELECT col_type_is('plan_settings', 'max_email_alerts_per_day', 'integer', 'plan_settings.max_email_alerts_per_day is integer');
SELECT col_type_is('plan_settings', 'delivery_config', 'jsonb', 'plan_settings.delivery_config is jsonb');
SELECT has_column('user_alert_prefs', 'delivery_mode', 'user_alert_prefs.delivery_mode exists');
SELECT has_column('events', 'severity_score', 'events.severity_score exists');
SELECT has_column('risk_indices', 'window_days', 'risk_indices.window_days exists');
SELECT has_column('asset_risk', 'asset', 'asset_risk.asset exists');

-- Every public function, with its signature.
SELECT has_function('alerts_lock_key', ARRAY['text'], 'alerts_lock_key(text) exists');
SELECT has_function('alerts_lock_skipped', ARRAY['text'], 'alerts_lock_skipped(text) exists');
SELECT has_function('alerts_phase_a', ARRAY[]::text[], 'alerts_phase_a() exists');
SELECT has_function('alerts_phase_b', ARRAY[]::text[], 'alerts_phase_b() exists');
SELECT has_function('alerts_analyze_if_stale', ARRAY[]::text[], 'alerts_analyze_if_stale() exists');
SELECT has_function('claim_deliveries', ARRAY['integer'], 'claim_deliveries(integer) exists');
SELECT has_function('count_due_deliveries', ARRAY['integer', 'text[]'], 'count_due_deliveries(integer, text[]) exists');
SELECT has_function('mark_deliveries_sent', ARRAY['bigint[]', 'bigint[]', 'text[]'], 'mark_deliveries_sent(bigint[], bigint[], text[]) exists');
SELECT has_function('mark_deliveries_failed', ARRAY['bigint[]', 'bigint[]', 'text[]'], 'mark_deliveries_failed(bigint[], bigint[], text[]) exists');
SELECT has_function('mark_deliveries_skipped', ARRAY['bigint[]', 'bigint[]', 'text[]'], 'mark_deliveries_skipped(bigint[], bigint[], text[]) exists');
SELECT has_function('requeue_deliveries', ARRAY['bigint[]', 'bigint[]', 'text[]'], 'requeue_deliveries(bigint[], bigint[], text[]) exists');
SELECT has_function('release_deliveries', ARRAY['bigint[]', 'bigint[]'], 'release_deliveries(bigint[], bigint[]) exists');
SELECT has_function('alerts_retry_delay', ARRAY['integer'], 'alerts_retry_delay(integer) exists');
SELECT has_function('reclaim_expired_deliveries', ARRAY[]::text[], 'reclaim_expired_deliveries() exists');
SELECT has_function('alerts_run_started', ARRAY['text'], 'alerts_run_started(text) exists');
SELECT has_function('alerts_run_finished', ARRAY['bigint', 'text', 'jsonb', 'text'],
                    'alerts_run_finished(bigint, text, jsonb, text) exists');
SELECT has_function('alerts_status', ARRAY[]::text[], 'alerts_status() exists');
SELECT has_function('alerts_prune', ARRAY['interval', 'integer'], 'alerts_prune(interval, integer) exists');

SELECT function_returns('alerts_lock_key', ARRAY['text'], 'bigint', 'alerts_lock_key returns bigint');
SELECT function_returns('alerts_phase_a', ARRAY[]::text[], 'jsonb', 'alerts_phase_a returns jsonb');
SELECT function_returns('alerts_phase_b', ARRAY[]::text[], 'jsonb', 'alerts_phase_b returns jsonb');
SELECT function_returns('claim_deliveries', ARRAY['integer'], 'setof record', 'claim_deliveries returns a set');
SELECT function_returns('alerts_retry_delay', ARRAY['integer'], 'interval', 'alerts_retry_delay returns interval');
SELECT function_returns('reclaim_expired_deliveries', ARRAY[]::text[], 'jsonb', 'reclaim_expired_deliveries returns jsonb');

-- Every public function has a COMMENT (to_regprocedure gives NULL, not an error, when one is missing).
SELECT isnt(obj_description(to_regprocedure('alerts_lock_key(text)'), 'pg_proc'), NULL,
            'alerts_lock_key has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_lock_skipped(text)'), 'pg_proc'), NULL,
            'alerts_lock_skipped has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_phase_a()'), 'pg_proc'), NULL,
            'alerts_phase_a has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_phase_b()'), 'pg_proc'), NULL,
            'alerts_phase_b has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_analyze_if_stale()'), 'pg_proc'), NULL,
            'alerts_analyze_if_stale has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('claim_deliveries(integer)'), 'pg_proc'), NULL,
            'claim_deliveries has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('count_due_deliveries(integer, text[])'), 'pg_proc'), NULL,
            'count_due_deliveries has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('mark_deliveries_sent(bigint[],bigint[],text[])'), 'pg_proc'), NULL,
            'mark_deliveries_sent has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('mark_deliveries_failed(bigint[],bigint[],text[])'), 'pg_proc'), NULL,
            'mark_deliveries_failed has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('mark_deliveries_skipped(bigint[],bigint[],text[])'), 'pg_proc'), NULL,
            'mark_deliveries_skipped has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('requeue_deliveries(bigint[],bigint[],text[])'), 'pg_proc'), NULL,
            'requeue_deliveries has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('release_deliveries(bigint[],bigint[])'), 'pg_proc'), NULL,
            'release_deliveries has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_retry_delay(integer)'), 'pg_proc'), NULL,
            'alerts_retry_delay has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('reclaim_expired_deliveries()'), 'pg_proc'), NULL,
            'reclaim_expired_deliveries has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_run_started(text)'), 'pg_proc'), NULL,
            'alerts_run_started has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_run_finished(bigint,text,jsonb,text)'), 'pg_proc'), NULL,
            'alerts_run_finished has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_status()'), 'pg_proc'), NULL,
            'alerts_status has a COMMENT');
SELECT isnt(obj_description(to_regprocedure('alerts_prune(interval,integer)'), 'pg_proc'), NULL,
            'alerts_prune has a COMMENT');

-- And no function of the engine's (any public function not owned by an extension such
-- as pgtap) is left without one, including functions added after this file was written.
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
         AND obj_description(p.oid, 'pg_proc') IS NULL$$,
    'every public function outside extensions has a COMMENT');

-- A SECURITY DEFINER function must pin its search_path, or a caller could put its own
-- objects in front of the engine's tables and run them with the owner's rights.
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND p.prosecdef
         AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c (setting) WHERE c.setting LIKE 'search_path=%')$$,
    'every SECURITY DEFINER function sets its own search_path');

-- ... and must not be executable by PUBLIC (PostgreSQL grants EXECUTE to PUBLIC by default;
-- a NULL proacl means exactly that default).
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND p.prosecdef
         AND (p.proacl IS NULL
              OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                          WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))$$,
    'no SECURITY DEFINER function is executable by PUBLIC');

-- Least privilege: the runner role works through the functions only.
SELECT ok(has_function_privilege('alerts_runner', 'claim_deliveries(integer)', 'EXECUTE'),
          'alerts_runner may execute claim_deliveries');
SELECT ok(has_function_privilege('alerts_runner', 'alerts_phase_b()', 'EXECUTE'),
          'alerts_runner may execute alerts_phase_b');
SELECT ok(NOT has_table_privilege('alerts_runner', 'user_alert_deliveries', 'UPDATE'),
          'alerts_runner may not UPDATE user_alert_deliveries directly');
SELECT ok(NOT has_function_privilege('alerts_readonly', 'claim_deliveries(integer)', 'EXECUTE'),
          'alerts_readonly may not claim deliveries');

SELECT * FROM finish();
ROLLBACK;
