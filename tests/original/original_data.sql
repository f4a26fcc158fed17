-- Rows of a running energyriskiq-ops database, written as its code writes them: the plan
-- seed, accounts, the old alerts engine (events with cooldown keys and fingerprints,
-- deliveries it queued, sent, retried, failed, skipped, left in 'sending', shown in the
-- account), the trader worker (instant rows recorded with sent_at for every outcome),
-- the pro worker (index_digest and geri rows without an alert event), digest batching.
-- Naive timestamps are UTC, as the application writes them (NOW() on a UTC server).
SET client_min_messages = warning;
CREATE TEMPORARY TABLE fixture_clock AS SELECT (now() AT TIME ZONE 'UTC')::timestamp(0) AS t;

INSERT INTO plan_settings (plan_code, display_name, monthly_price_usd, allowed_alert_types, max_regions,
                           max_email_alerts_per_day, delivery_config) VALUES
    ('free', 'Free', 0.00, '{HIGH_IMPACT_EVENT}', 1, 2,
     '{"email": {"max_per_day": 2, "realtime_limit": 1, "mode": "limited"}, "telegram": {"enabled": true, "send_all": false}, "sms": {"enabled": false, "send_all": false}, "account": {"show_all": true}}'),
    ('personal', 'Personal', 9.95, '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE}', 2, 4,
     '{"email": {"max_per_day": 4, "realtime_limit": 1, "mode": "limited"}, "telegram": {"enabled": false, "send_all": false}, "sms": {"enabled": false, "send_all": false}, "account": {"show_all": true}}'),
    ('trader', 'Trader', 29.00, '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 3, 8,
     '{"email": {"max_per_day": 8, "realtime_limit": 3, "mode": "limited"}, "telegram": {"enabled": true, "send_all": true}, "sms": {"enabled": false, "send_all": false}, "account": {"show_all": true}}'),
    ('pro', 'Pro', 49.00, '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE,DAILY_DIGEST}', 4, 15,
     '{"email": {"max_per_day": 15, "realtime_limit": null, "mode": "limited"}, "telegram": {"enabled": true, "send_all": true}, "sms": {"enabled": true, "send_all": true}, "account": {"show_all": true}}'),
    ('enterprise', 'Enterprise', 129.00, '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE,DAILY_DIGEST}', -1, 30,
     '{"email": {"max_per_day": 30, "realtime_limit": null, "mode": "limited"}, "telegram": {"enabled": true, "send_all": true}, "sms": {"enabled": true, "send_all": true}, "account": {"show_all": true}}');

INSERT INTO users (id, email, telegram_chat_id, phone_number, email_verified, created_at)
SELECT u.id, u.email, u.chat, u.phone, u.verified, c.t - interval '60 days'
  FROM fixture_clock c,
       (VALUES (1, 'free@example.com', '1001', NULL, true),
               (2, 'personal@example.com', NULL, NULL, true),
               (3, 'trader@example.com', '1003', '+15550000003', true),
               (4, 'pro@example.com', NULL, '+15550000004', true),
               (5, 'enterprise@example.com', '1005', NULL, true),
               (6, 'unverified@example.com', '1006', NULL, false)) AS u (id, email, chat, phone, verified);
SELECT setval('users_id_seq', 6);
INSERT INTO user_plans (user_id, plan, plan_price_usd)
VALUES (1, 'free', 0), (2, 'personal', 9.95), (3, 'trader', 29), (4, 'pro', 49), (5, 'enterprise', 129), (6, 'trader', 29);
INSERT INTO user_alert_prefs (user_id, region, alert_type, asset, threshold)
VALUES (1, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL),
       (2, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL), (2, 'Europe', 'REGIONAL_RISK_SPIKE', NULL, 65.5),
       (3, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL), (3, 'Europe', 'ASSET_RISK_SPIKE', 'oil', 70),
       (4, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL), (4, 'Middle East', 'HIGH_IMPACT_EVENT', NULL, NULL),
       (5, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL), (5, 'Europe', 'DAILY_DIGEST', NULL, NULL),
       (6, 'Europe', 'HIGH_IMPACT_EVENT', NULL, NULL);
INSERT INTO user_settings (user_id, alert_type, region) VALUES (3, 'HIGH_IMPACT_EVENT', 'Europe'), (4, 'HIGH_IMPACT_EVENT', NULL);

INSERT INTO events (id, title, source_name, source_url, category, region, severity_score, inserted_at, processed)
SELECT e.id, e.title, 'Reuters Energy', 'https://example.com/' || e.id, e.category, e.region, e.severity, c.t - e.age, true
  FROM fixture_clock c,
       (VALUES (100, 'Global supply warning', 'energy', 'Global', 5, interval '4 days'),
               (101, 'Refinery fire at Rotterdam', 'energy', 'Europe', 5, interval '3 days'),
               (102, 'Strait of Hormuz closure threat', 'geopolitical', 'Middle East', 5, interval '1 hour'),
               (103, 'Pipeline outage in Norway', 'supply_chain', 'Europe', 5, interval '2 hours'),
               (104, 'Minor port delay', 'supply_chain', 'Asia', 2, interval '3 hours')) AS e (id, title, category, region, severity, age);
SELECT setval('events_id_seq', 104);
INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT 'Europe', 7, r.score, 'rising', c.t - r.age
  FROM fixture_clock c, (VALUES (55.0, interval '3 days'), (72.5, interval '2 days')) AS r (score, age);
INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)
SELECT 'oil', 'Europe', 7, 74.0, 'up', c.t - interval '1 day' FROM fixture_clock c;

-- The old alerts engine's events (Phase A: cooldown key with the day, fingerprint as the
-- contract's), the digest worker's daily digest event.
INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, body, driver_event_ids,
                          cooldown_key, event_fingerprint, raw_input, classification, category, confidence,
                          created_at, fanout_completed_at)
SELECT a.id, a.alert_type, a.region, a.assets, a.severity, a.headline, a.body, a.drivers,
       format(a.cooldown_key, to_char(c.t - a.age, 'YYYY-MM-DD')),
       format(a.fingerprint, to_char(c.t - a.age, 'YYYY-MM-DD')), a.raw_input, a.classification, a.category, a.confidence,
       c.t - a.age, c.t - a.age + a.fanned_after
  FROM fixture_clock c,
       (VALUES (1, 'HIGH_IMPACT_EVENT', 'Europe', '{}'::text[], 5, 'Refinery fire at Rotterdam', 'Fire at a major refinery.',
                '{101}'::int[], 'EVENT:HIGH_IMPACT:101:%s', 'HIGH_IMPACT_EVENT:101',
                '{"source": "Reuters Energy"}'::jsonb, '{"impact": "high"}'::jsonb, 'energy', 0.870, interval '3 days', interval '1 minute'),
               (2, 'REGIONAL_RISK_SPIKE', 'Europe', '{}', 4, 'Europe risk spike', 'Regional 7-day risk rose to 72.',
                NULL, 'REGION:Europe:RISK_SPIKE:%s:threshold_72', 'REGIONAL_RISK_SPIKE:Europe:%s', NULL, NULL, NULL, NULL,
                interval '2 days', interval '2 minutes'),
               (3, 'ASSET_RISK_SPIKE', 'Europe', '{oil}', 3, 'Oil risk spike in Europe', 'Oil risk at 74.',
                NULL, 'ASSET:Europe:oil:SPIKE:%s', 'ASSET_RISK_SPIKE:Europe:oil:%s', NULL, NULL, 'supply', 0.5,
                interval '1 day', interval '1 minute'),
               (4, 'DAILY_DIGEST', 'Europe', '{}', 2, 'Daily digest: Europe', 'Three alerts today.',
                NULL, 'DIGEST:Europe:%s', 'DAILY_DIGEST:Europe:%s', '{"alerts": 3}'::jsonb, '{"summary_type": "daily"}'::jsonb,
                'digest', 0.9, interval '20 hours', interval '1 minute'),
               (5, 'HIGH_IMPACT_EVENT', NULL, '{}', 5, 'Global supply warning', 'No region given.',
                '{100}'::int[], 'EVENT:HIGH_IMPACT:100:%s', 'HIGH_IMPACT_EVENT:100', NULL, NULL, NULL, NULL,
                interval '4 days', interval '1 minute'),
               -- Created by the old Phase A just before the old engine was stopped: not fanned out yet.
               (6, 'HIGH_IMPACT_EVENT', 'Middle East', '{}', 5, 'Strait of Hormuz closure threat', 'Shipping at risk.',
                '{102}'::int[], 'EVENT:HIGH_IMPACT:102:%s', 'HIGH_IMPACT_EVENT:102', NULL, NULL, 'geopolitical', 0.95,
                interval '50 minutes', NULL)
       ) AS a (id, alert_type, region, assets, severity, headline, body, drivers, cooldown_key, fingerprint,
               raw_input, classification, category, confidence, age, fanned_after);
SELECT setval('alert_events_id_seq', 6);

-- Deliveries. Columns as each writer sets them:
--   old engine fanout    status queued/sent('account'), reason, kind instant|digest, no sent_at
--   old engine sender    sending + attempts; sent + sent_at + provider id; failed/skipped + last_error;
--                        a retry: queued + last_error + next_retry_at
--   trader worker        instant, sent_at = NOW() for every status, last_error, batch_window
--   pro worker           index_digest (and earlier geri), no alert event, sent_at = NOW(), geri_date
--   digest batching      queued digest rows become skipped 'batched_into_digest'
--   one-off fix          failed 'Email sending is disabled' became skipped 'email_disabled'
INSERT INTO user_alert_deliveries (id, user_id, alert_event_id, channel, status, reason, provider_message_id,
                                   created_at, sent_at, delivery_kind, attempts, next_retry_at, last_error,
                                   batch_window, geri_date)
SELECT d.id, d.user_id, d.event_id, d.channel, d.status, d.reason, d.provider_id,
       c.t - d.age, c.t - d.age + d.sent_after, d.kind, d.attempts, c.t + d.retry_in, d.last_error,
       c.t - d.batch_age, (c.t - d.geri_age)::date
  FROM fixture_clock c,
       (VALUES
        -- event 1, three days ago: every outcome
        (1, 1, 1, 'email', 'sent', NULL, 'msg-1', interval '3 days', interval '1 minute', 'instant', 1, NULL::interval, NULL, NULL::interval, NULL::interval),
        (2, 1, 1, 'account', 'sent', NULL, NULL, interval '3 days', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        (3, 2, 1, 'email', 'failed', NULL, NULL, interval '3 days', NULL, 'instant', 3, NULL, 'SMTP 550 mailbox unavailable', NULL, NULL),
        (4, 3, 1, 'telegram', 'sent', NULL, 'tg-4', interval '3 days', interval '0 seconds', 'instant', 0, NULL, NULL, interval '3 days', NULL),
        (5, 3, 1, 'email', 'failed', NULL, NULL, interval '3 days', interval '0 seconds', 'instant', 0, NULL, 'Brevo 401 unauthorized', interval '3 days', NULL),
        (6, 4, 1, 'email', 'skipped', NULL, NULL, interval '3 days', NULL, 'instant', 1, NULL, 'email_disabled', NULL, NULL),
        (7, 5, 1, 'email', 'skipped', NULL, NULL, interval '3 days', NULL, 'digest', 0, NULL, 'batched_into_digest', NULL, NULL),
        (8, 4, 1, 'account', 'skipped', 'plan_limit', NULL, interval '3 days', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        (9, 6, 1, 'email', 'failed', 'unverified', NULL, interval '3 days', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        -- event 2, two days ago: still in the old engine's queue
        (10, 2, 2, 'email', 'queued', NULL, NULL, interval '2 days', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        (11, 3, 2, 'email', 'queued', NULL, NULL, interval '2 days', NULL, 'instant', 1, interval '-10 minutes', 'timeout', NULL, NULL),
        (12, 4, 2, 'sms', 'queued', NULL, NULL, interval '2 days', NULL, 'instant', 2, interval '1 hour', 'Twilio 429', NULL, NULL),
        (13, 5, 2, 'telegram', 'sending', NULL, NULL, interval '2 days', NULL, 'instant', 1, NULL, NULL, NULL, NULL),
        (14, 1, 2, 'account', 'sent', NULL, NULL, interval '2 days', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        -- event 3: a digest delivery waiting for its digest; event 4: the daily digest
        (15, 5, 3, 'email', 'queued', NULL, NULL, interval '1 day', NULL, 'digest', 0, NULL, NULL, NULL, NULL),
        (16, 4, 4, 'email', 'sent', NULL, 'msg-16', interval '20 hours', interval '5 minutes', 'instant', 1, NULL, NULL, NULL, NULL),
        (17, 4, 4, 'account', 'sent', NULL, NULL, interval '20 hours', NULL, 'instant', 0, NULL, NULL, NULL, NULL),
        -- event 5 (no region)
        (18, 4, 5, 'email', 'sent', NULL, 'msg-18', interval '4 days', interval '1 minute', 'instant', 1, NULL, NULL, NULL, NULL),
        -- the pro worker: index digests and the GERI rows before them, no alert event
        (19, 1, NULL, 'telegram', 'sent', NULL, NULL, interval '1 day', interval '0 seconds', 'index_digest', 0, NULL, NULL, NULL, interval '1 day'),
        (20, 4, NULL, 'email', 'failed', NULL, NULL, interval '1 day', interval '0 seconds', 'index_digest', 0, NULL, 'Brevo 500', NULL, interval '1 day'),
        (21, 5, NULL, 'email', 'skipped', NULL, NULL, interval '1 day', interval '0 seconds', 'index_digest', 0, NULL, 'no_preferences', NULL, interval '1 day'),
        (22, 4, NULL, 'email', 'sent', NULL, NULL, interval '5 days', interval '0 seconds', 'geri', 0, NULL, NULL, interval '5 days', interval '5 days')
       ) AS d (id, user_id, event_id, channel, status, reason, provider_id, age, sent_after, kind, attempts, retry_in,
               last_error, batch_age, geri_age);
SELECT setval('user_alert_deliveries_id_seq', 22);

INSERT INTO user_alert_digests (id, user_id, channel, period, window_start, window_end, digest_key, status, attempts,
                                sent_at, created_at)
SELECT 1, 5, 'email', 'daily', date_trunc('day', c.t - interval '3 days'), date_trunc('day', c.t - interval '2 days'),
       'digest:5:email:daily:d3', 'sent', 1, c.t - interval '2 days', c.t - interval '2 days'
  FROM fixture_clock c;
SELECT setval('user_alert_digests_id_seq', 1);
INSERT INTO user_alert_digest_items (digest_id, delivery_id) VALUES (1, 7);

DROP TABLE fixture_clock;
RESET client_min_messages;
