-- Phase B: each rule of CONTRACT.md "Who gets a delivery" decides, user by user, which
-- (event, channel, kind) rows are created; every pending event is marked fanned out, also
-- when nobody matched; daily quotas count UTC days; a second run creates nothing.
BEGIN;
SELECT plan(46);

DELETE FROM user_alert_deliveries;
DELETE FROM alert_events;
DELETE FROM user_alert_prefs;
DELETE FROM user_plans;
DELETE FROM plan_settings;
DELETE FROM users;
UPDATE alerts_config SET fanout_lookback = DEFAULT;

-- The daily quota must count UTC days. Pick a session time zone whose "today" starts at
-- another instant than UTC's, and a delivery time x between the two midnights:
--   before 10:00 UTC: UTC+14, x = 23:59 UTC yesterday (local today, UTC yesterday: must not count);
--   from 10:00 UTC:   UTC-10, x = 00:01 UTC today (local yesterday, UTC today: must count).
CREATE TEMP TABLE clock AS
SELECT extract(hour FROM now() AT TIME ZONE 'UTC') < 10 AS early,
       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS utc_midnight;
DO $$ BEGIN
    PERFORM set_config('timezone', CASE WHEN early THEN 'Etc/GMT-14' ELSE 'Etc/GMT+10' END, true) FROM clock;
END $$;
ALTER TABLE clock ADD COLUMN x timestamptz;
UPDATE clock SET x = utc_midnight + CASE WHEN early THEN interval '-1 minute' ELSE interval '1 minute' END;

-- Plans that do not test quotas get a generous email cap (50); NULL caps are tested at the end.
INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) VALUES
    ('pro', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 50, '{"telegram": {"enabled": true}}'),
    ('free', '{HIGH_IMPACT_EVENT}', 1, '{}'),
    ('risk_only', '{REGIONAL_RISK_SPIKE}', 50, '{}'),
    ('smsplan', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 50,
     '{"sms": {"enabled": true}, "telegram": {"enabled": false}}'),
    ('capped', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 10, '{"email": {"max_per_day": 1}}'),
    ('capped2', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 50, '{"email": {"max_per_day": 2}}'),
    ('nullcap', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 1, '{"email": {"max_per_day": null}}'),
    ('digesty', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 50, '{"email": {"digest": true}}');
-- No plan_settings row for 'enterprise'.

INSERT INTO users (id, email, email_verified, telegram_chat_id, phone_number) VALUES
    (920001, 'u1@example.com', true, 'tg-1', '+1001'),   -- pro: email and telegram, no sms by default
    (920002, 'u2@example.com', true, NULL, NULL),         -- plan without plan_settings row
    (920003, 'u3@example.com', true, NULL, NULL),         -- no user_plans row: free
    (920004, 'u4@example.com', true, NULL, NULL),         -- allowed_alert_types
    (920005, 'u5@example.com', true, NULL, NULL),         -- region 'global'
    (920006, 'u6@example.com', true, NULL, NULL),         -- specific regions that do not match
    (920007, 'u7@example.com', true, NULL, NULL),         -- asset filter
    (920008, 'u8@example.com', true, NULL, NULL),         -- asset NULL = any
    (920009, 'u9@example.com', true, NULL, NULL),         -- threshold (ignored by HIGH_IMPACT_EVENT)
    (920010, 'u10@example.com', true, NULL, NULL),        -- disabled pref
    (920011, 'u11@example.com', false, 'tg-11', NULL),    -- email_verified false
    (920012, 'u12@example.com', NULL, NULL, NULL),        -- email_verified NULL
    (920013, NULL, true, 'tg-13', NULL),                  -- no email address
    (920014, 'u14@example.com', true, 'tg-14', '+1014'),  -- sms enabled, telegram disabled
    (920015, 'u15@example.com', true, 'tg-15', NULL),     -- email max_per_day 1 from delivery_config
    (920016, 'u16@example.com', true, NULL, NULL),        -- quota counts today's non-skipped rows
    (920017, 'u17@example.com', true, NULL, NULL),        -- max_per_day null: max_email_alerts_per_day
    (920018, 'u18@example.com', true, NULL, NULL),        -- pref delivery_mode digest
    (920019, 'u19@example.com', true, 'tg-19', NULL),     -- plan email digest flag
    (920020, 'u20@example.com', true, NULL, NULL),        -- pref instant beats plan digest
    (920021, 'u21@example.com', true, NULL, NULL),        -- no prefs
    (920022, 'u22@example.com', true, NULL, NULL);        -- quota day is the UTC day

INSERT INTO user_plans (user_id, plan) VALUES
    (920001, 'pro'), (920002, 'enterprise'), (920004, 'risk_only'), (920005, 'pro'), (920006, 'pro'),
    (920007, 'pro'), (920008, 'pro'), (920009, 'pro'), (920010, 'pro'), (920011, 'pro'), (920012, 'pro'),
    (920013, 'pro'), (920014, 'smsplan'), (920015, 'capped'), (920016, 'capped2'), (920017, 'nullcap'),
    (920018, 'pro'), (920019, 'digesty'), (920020, 'digesty'), (920021, 'pro'), (920022, 'capped');

INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold, enabled, delivery_mode) VALUES
    (920001, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920002, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920003, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920003, 'REGIONAL_RISK_SPIKE', 'Asia', NULL, NULL, true, NULL),
    (920004, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920004, 'REGIONAL_RISK_SPIKE', 'Asia', NULL, NULL, true, NULL),
    (920005, 'REGIONAL_RISK_SPIKE', 'global', NULL, NULL, true, NULL),
    (920006, 'REGIONAL_RISK_SPIKE', 'Europe', NULL, NULL, true, NULL),
    (920006, 'HIGH_IMPACT_EVENT', 'Asia', NULL, NULL, true, NULL),
    (920007, 'ASSET_RISK_SPIKE', 'Gulf', 'oil', NULL, true, NULL),
    (920008, 'ASSET_RISK_SPIKE', 'global', NULL, NULL, true, NULL),
    (920009, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, NULL),
    (920010, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, false, NULL),
    (920011, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920012, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920013, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, NULL),
    (920014, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, NULL),
    (920015, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920016, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920017, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL),
    (920018, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, 'digest'),
    (920019, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, NULL),
    (920020, 'HIGH_IMPACT_EVENT', 'Europe', NULL, 5, true, 'instant'),
    (920022, 'HIGH_IMPACT_EVENT', 'Europe', NULL, NULL, true, NULL);

INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, event_fingerprint,
                          created_at, fanout_completed_at) VALUES
    (930001, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E1', 'pgtap:b:930001', now(), NULL),
    (930002, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 3, 'E2', 'pgtap:b:930002', now(), NULL),
    (930003, 'REGIONAL_RISK_SPIKE', 'Asia', '{}', 4, 'E3', 'pgtap:b:930003', now(), NULL),
    (930004, 'ASSET_RISK_SPIKE', 'Gulf', '{oil}', 4, 'E4', 'pgtap:b:930004', now(), NULL),
    (930005, 'ASSET_RISK_SPIKE', 'Gulf', '{gas}', 4, 'E5', 'pgtap:b:930005', now(), NULL),
    (930006, 'HIGH_IMPACT_EVENT', 'Nowhere', '{}', 5, 'E6: nobody subscribes', 'pgtap:b:930006', now(), NULL),
    (930007, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E7: older than fanout_lookback', 'pgtap:b:930007',
     now() - interval '8 days', NULL),
    (930008, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E8: fanned out', 'pgtap:b:930008',
     now() - interval '3 days', now() - interval '3 days'),
    (930009, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E9: fanned out', 'pgtap:b:930009',
     now() - interval '3 days', now() - interval '3 days'),
    (930010, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E10: fanned out', 'pgtap:b:930010',
     now() - interval '3 days', now() - interval '3 days');

-- Deliveries that existed before this run (on already fanned-out events).
INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, sent_at, created_at) VALUES
    (930008, 920016, 'email', 'sent', 1, now(), now()),
    (930009, 920016, 'email', 'skipped', 1, NULL, now());
INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, sent_at, created_at)
SELECT 930010, 920022, 'email', 'sent', 1, x, x FROM clock;

CREATE TEMP VIEW new_deliveries AS
SELECT alert_event_id, user_id, channel, delivery_kind, status, attempts
  FROM user_alert_deliveries WHERE alert_event_id NOT IN (930008, 930009, 930010);

CREATE TEMP TABLE run1 AS SELECT alerts_phase_b() AS r;

-- Counts.
SELECT ok((SELECT r FROM run1) @> '{"phase": "b", "locked": true, "skipped": false}',
          'a run that did its work reports phase b, locked true, skipped false');
SELECT is((SELECT (r ->> 'events_fanned_out')::int FROM run1), 6, 'the 6 pending events within the lookback are fanned out');
SELECT is((SELECT (r ->> 'deliveries_created')::int FROM run1),
          33 + (SELECT CASE WHEN early THEN 1 ELSE 0 END FROM clock), 'deliveries_created counts the new rows');

-- Fan-out marks.
SELECT set_eq('SELECT id FROM alert_events WHERE fanout_completed_at >= now()',
              ARRAY[930001, 930002, 930003, 930004, 930005, 930006]::bigint[],
              'exactly the pending events get fanout_completed_at');
SELECT ok((SELECT fanout_completed_at IS NOT NULL FROM alert_events WHERE id = 930006)
          AND NOT EXISTS (SELECT 1 FROM user_alert_deliveries WHERE alert_event_id = 930006),
          'an event with no eligible user is still marked fanned out');
SELECT ok((SELECT fanout_completed_at IS NULL FROM alert_events WHERE id = 930007)
          AND NOT EXISTS (SELECT 1 FROM user_alert_deliveries WHERE alert_event_id = 930007),
          'an event older than fanout_lookback is left alone');
SELECT is((SELECT count(*) FROM user_alert_deliveries WHERE alert_event_id IN (930008, 930009, 930010)), 3::bigint,
          'already fanned-out events get no new deliveries');
SELECT is((SELECT count(*) FROM new_deliveries WHERE status <> 'queued' OR attempts <> 0), 0::bigint,
          'new deliveries are queued with 0 attempts');

-- Who gets what, user by user.
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920001',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930001, 'telegram', 'instant'),
                       (930002, 'email', 'instant'), (930002, 'telegram', 'instant')$$,
              'pro user: email and telegram for each matching event, no sms without sms enabled');
SELECT is_empty('SELECT 1 FROM new_deliveries WHERE user_id = 920002',
                'a plan without a plan_settings row gets nothing');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920003',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text)$$,
              'no user_plans row: free plan (HIGH_IMPACT_EVENT only, max_email_alerts_per_day 1, most severe first)');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920004',
              $$VALUES (930003::bigint, 'email'::text, 'instant'::text)$$,
              'allowed_alert_types: only the plan''s types are delivered');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920005',
              $$VALUES (930003::bigint, 'email'::text, 'instant'::text)$$,
              'region global matches an event in Asia');
SELECT is_empty('SELECT 1 FROM new_deliveries WHERE user_id = 920006',
                'a specific region matches only that region');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920007',
              $$VALUES (930004::bigint, 'email'::text, 'instant'::text)$$,
              'asset filter oil: the oil spike, not the gas spike');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920008',
              $$VALUES (930004::bigint, 'email'::text, 'instant'::text), (930005, 'email', 'instant')$$,
              'asset NULL matches every asset');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920009',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930002, 'email', 'instant')$$,
              'HIGH_IMPACT_EVENT ignores the threshold: a pref with threshold 5 gets the severity-3 event too');
SELECT is_empty('SELECT 1 FROM new_deliveries WHERE user_id = 920010', 'a disabled pref gets nothing');
SELECT is_empty('SELECT 1 FROM new_deliveries WHERE user_id = 920011',
                'email_verified false gets nothing, not even telegram');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920012',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930002, 'email', 'instant')$$,
              'email_verified NULL gets deliveries; no telegram_chat_id means no telegram row');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920013',
              $$VALUES (930001::bigint, 'telegram'::text, 'instant'::text), (930002, 'telegram', 'instant')$$,
              'no email address: telegram only');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920014',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930001, 'sms', 'instant'),
                       (930002, 'email', 'instant'), (930002, 'sms', 'instant')$$,
              'sms "enabled": true gives an sms row; telegram "enabled": false gives none');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920015',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930001, 'telegram', 'instant'),
                       (930002, 'telegram', 'instant')$$,
              'email max_per_day 1 overrides max_email_alerts_per_day 10 and keeps the most severe; telegram uncapped');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920016',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text)$$,
              'max_per_day 2 with one sent today leaves room for one (the skipped row does not count)');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920017',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text)$$,
              'max_per_day null falls back to max_email_alerts_per_day 1');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920018',
              $$VALUES (930001::bigint, 'email'::text, 'digest'::text), (930002, 'email', 'digest')$$,
              'pref delivery_mode digest gives a digest row');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920019',
              $$VALUES (930001::bigint, 'email'::text, 'digest'::text), (930001, 'telegram', 'instant'),
                       (930002, 'email', 'digest'), (930002, 'telegram', 'instant')$$,
              'plan email "digest": true makes email a digest, telegram stays instant');
SELECT set_eq('SELECT alert_event_id, channel, delivery_kind FROM new_deliveries WHERE user_id = 920020',
              $$VALUES (930001::bigint, 'email'::text, 'instant'::text), (930002, 'email', 'instant')$$,
              'pref delivery_mode instant beats the plan''s digest flag');
SELECT is_empty('SELECT 1 FROM new_deliveries WHERE user_id = 920021', 'a user with no prefs gets nothing');
SELECT set_eq('SELECT alert_event_id FROM new_deliveries WHERE user_id = 920022',
              $$SELECT 930001::bigint FROM clock WHERE early$$,
              'the daily quota counts deliveries of the UTC day, not of the session time zone''s day');
SELECT is((SELECT (r ->> 'quota_suppressed')::int FROM run1),
          (SELECT CASE WHEN early THEN 5 ELSE 6 END FROM clock), 'quota_suppressed counts the deliveries held back');

-- The lot, in one comparison (catches a row nobody above looked for).
SELECT set_eq(
    $$SELECT alert_event_id, user_id, channel, delivery_kind FROM new_deliveries WHERE user_id <> 920022$$,
    $$VALUES (930001::bigint, 920001::bigint, 'email'::text, 'instant'::text), (930001, 920001, 'telegram', 'instant'),
             (930002, 920001, 'email', 'instant'), (930002, 920001, 'telegram', 'instant'),
             (930001, 920003, 'email', 'instant'), (930003, 920004, 'email', 'instant'),
             (930003, 920005, 'email', 'instant'), (930004, 920007, 'email', 'instant'),
             (930004, 920008, 'email', 'instant'), (930005, 920008, 'email', 'instant'),
             (930001, 920009, 'email', 'instant'), (930002, 920009, 'email', 'instant'),
             (930001, 920012, 'email', 'instant'),
             (930002, 920012, 'email', 'instant'), (930001, 920013, 'telegram', 'instant'),
             (930002, 920013, 'telegram', 'instant'),
             (930001, 920014, 'email', 'instant'), (930001, 920014, 'sms', 'instant'),
             (930002, 920014, 'email', 'instant'), (930002, 920014, 'sms', 'instant'),
             (930001, 920015, 'email', 'instant'), (930001, 920015, 'telegram', 'instant'),
             (930002, 920015, 'telegram', 'instant'), (930001, 920016, 'email', 'instant'),
             (930001, 920017, 'email', 'instant'), (930001, 920018, 'email', 'digest'),
             (930002, 920018, 'email', 'digest'),
             (930001, 920019, 'email', 'digest'), (930001, 920019, 'telegram', 'instant'),
             (930002, 920019, 'email', 'digest'), (930002, 920019, 'telegram', 'instant'),
             (930001, 920020, 'email', 'instant'), (930002, 920020, 'email', 'instant')$$,
    'the first run creates exactly the 33 expected deliveries (besides the UTC-day case)');

-- A second run creates nothing, even for a pref added since: fanned-out events stay done.
INSERT INTO user_alert_prefs (user_id, alert_type, region) VALUES (920021, 'HIGH_IMPACT_EVENT', 'Europe');
CREATE TEMP TABLE deliveries_after_run1 AS SELECT * FROM user_alert_deliveries;
CREATE TEMP TABLE run2 AS SELECT alerts_phase_b() AS r;
SELECT is((SELECT (r ->> 'events_fanned_out')::int FROM run2), 0, 'a second run fans out no event');
SELECT is((SELECT (r ->> 'deliveries_created')::int FROM run2), 0, 'a second run creates no delivery');
SELECT set_eq('SELECT id, status, attempts FROM user_alert_deliveries', 'SELECT id, status, attempts FROM deliveries_after_run1',
              'a second run leaves the deliveries as they were');

-- A new event later the same day: only it is fanned out, and today's quotas carry over.
INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, event_fingerprint)
VALUES (930011, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'E11', 'pgtap:b:930011');
CREATE TEMP TABLE run3 AS SELECT alerts_phase_b() AS r;
SELECT is((SELECT (r ->> 'events_fanned_out')::int FROM run3), 1, 'the third run fans out only the new event');
SELECT set_eq(
    'SELECT user_id, channel, delivery_kind FROM user_alert_deliveries WHERE alert_event_id = 930011',
    $$VALUES (920001::bigint, 'email'::text, 'instant'::text), (920001, 'telegram', 'instant'),
             (920009, 'email', 'instant'), (920012, 'email', 'instant'), (920013, 'telegram', 'instant'),
             (920014, 'email', 'instant'), (920014, 'sms', 'instant'), (920015, 'telegram', 'instant'),
             (920018, 'email', 'digest'), (920019, 'email', 'digest'), (920019, 'telegram', 'instant'),
             (920020, 'email', 'instant'), (920021, 'email', 'instant')$$,
    'the new event reaches the matching users, except where today''s quota is used up');
SELECT is_empty($$SELECT 1 FROM user_alert_deliveries
                   WHERE alert_event_id = 930011 AND user_id IN (920003, 920015, 920016, 920017) AND channel = 'email'$$,
                'users whose email quota was used up earlier today get no email for the new event');

-- Edge cases of delivery_config and prefs.
DELETE FROM user_alert_prefs;
DELETE FROM user_plans;
DELETE FROM plan_settings;
INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) VALUES
    ('pro', '{HIGH_IMPACT_EVENT}', 5, '{"email": {"enabled": false}, "sms": {"enabled": "yes"}}'),
    ('zero', '{HIGH_IMPACT_EVENT}', 0, '{}'),
    ('tgcap', '{HIGH_IMPACT_EVENT}', 50, '{"telegram": {"max_per_day": 0}, "email": {"digest": true}}'),
    ('uncapped', '{HIGH_IMPACT_EVENT}', NULL, '{}'),
    ('uncapped_null', '{HIGH_IMPACT_EVENT}', NULL, '{"email": {"max_per_day": null}}');
INSERT INTO user_plans (user_id, plan) VALUES
    (920001, 'pro'), (920002, 'zero'), (920003, 'tgcap'), (920004, 'uncapped'), (920005, 'uncapped_null');
UPDATE users SET telegram_chat_id = 'tg-3' WHERE id = 920003;
INSERT INTO user_alert_prefs (user_id, alert_type, region, delivery_mode) VALUES
    (920001, 'HIGH_IMPACT_EVENT', 'Europe', NULL),
    (920002, 'HIGH_IMPACT_EVENT', 'Europe', NULL),
    (920003, 'HIGH_IMPACT_EVENT', 'Europe', 'digest'),
    (920003, 'HIGH_IMPACT_EVENT', 'global', NULL),
    (920004, 'HIGH_IMPACT_EVENT', 'Europe', NULL),
    (920005, 'HIGH_IMPACT_EVENT', 'Europe', NULL);
INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, event_fingerprint)
VALUES (930012, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 4, 'E12', 'pgtap:b:930012');
SELECT is((SELECT (alerts_phase_b() ->> 'events_fanned_out')::int), 1, 'the fourth run fans out the one new event');
SELECT set_eq('SELECT user_id, channel FROM user_alert_deliveries WHERE alert_event_id = 930012 AND user_id = 920001',
              $$VALUES (920001::bigint, 'telegram'::text)$$,
              'email "enabled": false turns email off; a non-boolean sms "enabled" falls back to off');
SELECT is_empty('SELECT 1 FROM user_alert_deliveries WHERE alert_event_id = 930012 AND user_id = 920002',
                'max_email_alerts_per_day 0 allows no email');
SELECT set_eq('SELECT channel, delivery_kind FROM user_alert_deliveries WHERE alert_event_id = 930012 AND user_id = 920003',
              $$VALUES ('email'::text, 'digest'::text)$$,
              'telegram max_per_day 0 allows no telegram; a digest pref plus a plan-default pref on a digest plan give one digest');

-- CONTRACT.md: max_per_day "missing or null: for email the plan's max_email_alerts_per_day,
-- NULL there too meaning no cap". (greatest(NULL, 0) is 0, not NULL: this once capped such
-- plans at zero emails; fixed in 3585efc.)
SELECT set_eq('SELECT channel, delivery_kind FROM user_alert_deliveries WHERE alert_event_id = 930012 AND user_id = 920004',
              $$VALUES ('email'::text, 'instant'::text)$$,
              'no email max_per_day and max_email_alerts_per_day NULL: email without a cap');
SELECT set_eq('SELECT channel, delivery_kind FROM user_alert_deliveries WHERE alert_event_id = 930012 AND user_id = 920005',
              $$VALUES ('email'::text, 'instant'::text)$$,
              'email max_per_day null and max_email_alerts_per_day NULL: email without a cap');

-- A pref's threshold is a risk score (0-100) for spikes: the spike's risk_score is at least the
-- threshold, or the regional spike fired on its rise. A spike stored before risk_score existed
-- (NULL) matches every threshold. (Comparing the threshold with severity 1-5 once made a
-- threshold of 70, the original application's value, match no spike at all.)
INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) VALUES
    ('spikes', '{REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', NULL, '{}');
INSERT INTO user_plans (user_id, plan) VALUES (920006, 'spikes'), (920007, 'spikes'), (920008, 'spikes'), (920010, 'spikes');
INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold) VALUES
    (920006, 'REGIONAL_RISK_SPIKE', 'global', NULL, 70),
    (920007, 'REGIONAL_RISK_SPIKE', 'global', NULL, 80),
    (920008, 'ASSET_RISK_SPIKE', 'global', NULL, 90),
    (920010, 'REGIONAL_RISK_SPIKE', 'global', NULL, NULL);
INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, event_fingerprint,
                          risk_score, fired_on_rise) VALUES
    (930013, 'REGIONAL_RISK_SPIKE', 'R1', '{}', 3, 'E13: score 75', 'pgtap:b:930013', 75, false),
    (930014, 'REGIONAL_RISK_SPIKE', 'R2', '{}', 3, 'E14: score 72 on a rise', 'pgtap:b:930014', 72, true),
    (930015, 'REGIONAL_RISK_SPIKE', 'R3', '{}', 4, 'E15: stored before risk_score', 'pgtap:b:930015', NULL, NULL),
    (930016, 'ASSET_RISK_SPIKE', 'Gulf', '{oil}', 4, 'E16: score 85', 'pgtap:b:930016', 85, false),
    (930017, 'ASSET_RISK_SPIKE', 'Gulf', '{gas}', 5, 'E17: score 92', 'pgtap:b:930017', 92, false);
SELECT alerts_phase_b();
SELECT set_eq(
    $$SELECT alert_event_id, user_id FROM user_alert_deliveries WHERE alert_event_id BETWEEN 930013 AND 930017$$,
    $$VALUES (930013::bigint, 920006::bigint), (930014, 920006), (930015, 920006),
             (930014, 920007), (930015, 920007),
             (930017, 920008),
             (930013, 920010), (930014, 920010), (930015, 920010)$$,
    'spike thresholds compare the risk score: 70 gets 75, 80 gets only the rise and the unscored spike, 90 gets 92 not 85');
SELECT ok(EXISTS (SELECT 1 FROM user_alert_deliveries WHERE alert_event_id = 930013 AND user_id = 920006),
          'a threshold of 70 (the original application''s value) reaches a severity-3 spike scored 75');

SELECT * FROM finish();
ROLLBACK;
