-- Demo data for `make demo` (scripts/demo.py); needs the schema deployed first.
--
-- Safe to run again, also on a database that holds other data:
--   * plans are inserted only when missing (ON CONFLICT DO NOTHING): existing plans are never changed;
--   * demo users are the users with an @demo.example e-mail: inserted when missing, else reset;
--     only their user_plans and user_alert_prefs rows are replaced;
--   * events, risk_indices and asset_risk rows are inserted only when the same row is not already
--     there inside its lookback window, so a second run on the same day creates nothing new.
-- Nothing else is updated or deleted.
--
-- What one run on an empty database produces (phase A, B, C with the default alerts_config):
--   alert events   HIGH_IMPACT_EVENT x3 (Europe 5, Middle East 4, Asia 4),
--                  REGIONAL_RISK_SPIKE Middle East (58 -> 82, severity 4),
--                  ASSET_RISK_SPIKE Europe gas (88, severity 4)
--   deliveries     14: 13 instant ones sent, 1 e-mail digest (dave, enterprise plan) left queued
--   alice  pro, e-mail + Telegram       high-impact events in Europe, gas spikes scored 80 or more -> 4
--   bob    trader, SMS off in his plan  Middle East: high-impact events, regional spikes scored 90+
--                                       or rising 20% (82, up from 58, reaches him on its rise)      -> 4
--   carol  free: high-impact e-mail    every high-impact event; her regional-spike pref is not in her plan -> 3
--   dave   enterprise, e-mail digests   Asia high-impact events: Telegram + SMS now, e-mail in the digest -> 2
--   erin   pro, e-mail_verified false   gets nothing
BEGIN;

SELECT pg_advisory_xact_lock(alerts_lock_key('alerts_v2_demo_seed'));

INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config)
VALUES
    ('free', ARRAY['HIGH_IMPACT_EVENT'], 3,
     '{"email": {"enabled": true, "max_per_day": 3}, "telegram": {"enabled": false}, "sms": {"enabled": false}}'),
    ('trader', ARRAY['HIGH_IMPACT_EVENT', 'REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE'], 20,
     '{"email": {"enabled": true}, "telegram": {"enabled": true}, "sms": {"enabled": false}}'),
    ('pro', ARRAY['HIGH_IMPACT_EVENT', 'REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE'], 50,
     '{"email": {"enabled": true, "max_per_day": 50}, "telegram": {"enabled": true}, "sms": {"enabled": true, "max_per_day": 5}}'),
    ('enterprise', ARRAY['HIGH_IMPACT_EVENT', 'REGIONAL_RISK_SPIKE', 'ASSET_RISK_SPIKE'], NULL,
     '{"email": {"enabled": true, "digest": true}, "telegram": {"enabled": true}, "sms": {"enabled": true}}')
ON CONFLICT (plan_code) DO NOTHING;

CREATE TEMP TABLE demo_users (
    email text PRIMARY KEY,
    email_verified boolean,
    telegram_chat_id text,
    phone_number text,
    plan text NOT NULL
) ON COMMIT DROP;

INSERT INTO demo_users (email, email_verified, telegram_chat_id, phone_number, plan)
VALUES
    ('alice@demo.example', TRUE, '100200301', NULL, 'pro'),
    ('bob@demo.example', TRUE, '100200302', '+15550100302', 'trader'),
    ('carol@demo.example', TRUE, NULL, NULL, 'free'),
    ('dave@demo.example', TRUE, '100200304', '+15550100304', 'enterprise'),
    ('erin@demo.example', FALSE, '100200305', '+15550100305', 'pro');

UPDATE users AS u
   SET email_verified = d.email_verified,
       telegram_chat_id = d.telegram_chat_id,
       phone_number = d.phone_number
  FROM demo_users AS d
 WHERE u.email = d.email;

INSERT INTO users (email, email_verified, telegram_chat_id, phone_number)
SELECT d.email, d.email_verified, d.telegram_chat_id, d.phone_number
  FROM demo_users AS d
 WHERE NOT EXISTS (SELECT 1 FROM users AS u WHERE u.email = d.email)
 ORDER BY d.email;

INSERT INTO user_plans (user_id, plan)
SELECT u.id, d.plan
  FROM users AS u
  JOIN demo_users AS d ON d.email = u.email
ON CONFLICT (user_id) DO UPDATE SET plan = EXCLUDED.plan;

DELETE FROM user_alert_prefs AS p
 USING users AS u
 WHERE p.user_id = u.id
   AND u.email LIKE '%@demo.example';

INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold, enabled, delivery_mode)
SELECT u.id, v.alert_type, v.region, v.asset, v.threshold, TRUE, v.delivery_mode
  FROM (VALUES
            ('alice@demo.example', 'HIGH_IMPACT_EVENT', 'Europe', NULL::text, NULL::integer, NULL::text),
            ('alice@demo.example', 'ASSET_RISK_SPIKE', 'global', 'gas', 80, NULL),
            ('bob@demo.example', 'HIGH_IMPACT_EVENT', 'Middle East', NULL, NULL, NULL),
            ('bob@demo.example', 'REGIONAL_RISK_SPIKE', 'Middle East', NULL, 90, 'instant'),
            ('carol@demo.example', 'HIGH_IMPACT_EVENT', 'global', NULL, NULL, NULL),
            ('carol@demo.example', 'REGIONAL_RISK_SPIKE', 'global', NULL, NULL, NULL),
            ('dave@demo.example', 'HIGH_IMPACT_EVENT', 'Asia', NULL, NULL, NULL),
            ('dave@demo.example', 'ASSET_RISK_SPIKE', 'Europe', 'oil', NULL, NULL),
            ('erin@demo.example', 'HIGH_IMPACT_EVENT', 'global', NULL, NULL, NULL)
       ) AS v (email, alert_type, region, asset, threshold, delivery_mode)
  JOIN users AS u ON u.email = v.email;

-- Events of the last hours, severities 2 to 5; only 4 and 5 are high-impact.
INSERT INTO events (title, region, category, severity_score, inserted_at)
SELECT v.title, v.region, v.category, v.severity_score, now() - v.age
  FROM (VALUES
            ('Explosion at Baltic gas pipeline compressor station', 'Europe', 'supply', 5, INTERVAL '2 hours'),
            ('Tanker seized near the Strait of Hormuz', 'Middle East', 'security', 4, INTERVAL '3 hours'),
            ('Typhoon closes Shanghai and Ningbo container terminals', 'Asia', 'weather', 4, INTERVAL '5 hours'),
            ('Rail freight strike announced in France', 'Europe', 'labour', 3, INTERVAL '4 hours'),
            ('Brief refinery outage on the US Gulf Coast', 'North America', 'supply', 2, INTERVAL '6 hours')
       ) AS v (title, region, category, severity_score, age)
 WHERE NOT EXISTS (SELECT 1 FROM events AS e
                    WHERE e.title = v.title AND e.region = v.region
                      AND e.inserted_at > now() - INTERVAL '24 hours');

-- 7-day regional risk: the Middle East jumps from 58 to 82 (a spike); Europe and Asia stay calm.
INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT v.region, 7, v.risk_score, v.trend, now() - v.age
  FROM (VALUES
            ('Middle East', 58, 'flat', INTERVAL '30 hours'),
            ('Middle East', 82, 'up', INTERVAL '1 hour'),
            ('Europe', 44, 'flat', INTERVAL '30 hours'),
            ('Europe', 47, 'up', INTERVAL '1 hour'),
            ('Asia', 51, 'flat', INTERVAL '30 hours'),
            ('Asia', 49, 'down', INTERVAL '1 hour')
       ) AS v (region, risk_score, trend, age)
 WHERE NOT EXISTS (SELECT 1 FROM risk_indices AS r
                    WHERE r.region = v.region AND r.window_days = 7 AND r.risk_score = v.risk_score
                      AND r.calculated_at > now() - INTERVAL '2 days');

-- 7-day asset risk: European gas at 88 (a spike); Middle East oil and Asian freight below 70.
INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)
SELECT v.asset, v.region, 7, v.risk_score, v.direction, now() - v.age
  FROM (VALUES
            ('gas', 'Europe', 61, 'flat', INTERVAL '30 hours'),
            ('gas', 'Europe', 88, 'up', INTERVAL '1 hour'),
            ('oil', 'Middle East', 64, 'up', INTERVAL '1 hour'),
            ('freight', 'Asia', 55, 'up', INTERVAL '1 hour')
       ) AS v (asset, region, risk_score, direction, age)
 WHERE NOT EXISTS (SELECT 1 FROM asset_risk AS a
                    WHERE a.asset = v.asset AND a.region = v.region AND a.window_days = 7
                      AND a.risk_score = v.risk_score
                      AND a.calculated_at > now() - INTERVAL '2 days');

COMMIT;
