-- Data of the pre-v2 database (tests/legacy/legacy_schema.sql), October 2026, UTC.
-- Deterministic. The duplicates and edge cases are spelled out; the bulk of ordinary
-- deliveries is generated. What the upgrade must make of each case is stated beside it
-- and checked by tests/test_legacy_upgrade.py.

INSERT INTO users (id, email, email_verified, telegram_chat_id, phone_number, locale, created_at)
SELECT u,
       format('user%s@example.com', u),
       CASE WHEN u = 7 THEN false WHEN u % 4 = 0 THEN NULL ELSE true END,
       CASE WHEN u % 3 = 0 THEN (100000 + u)::text END,
       CASE WHEN u % 5 = 0 OR u = 6 THEN '+4420700' || lpad(u::text, 4, '0') END,
       CASE WHEN u % 2 = 0 THEN 'de' ELSE 'en' END,
       timestamp '2026-01-01 00:00:00' + u * interval '1 day'
  FROM generate_series(1, 40) AS u;

INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) VALUES
    ('free', '{HIGH_IMPACT_EVENT}', 3, '{"email": {"enabled": true}}'),
    ('trader', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', 20,
     '{"email": {"enabled": true}, "telegram": {"enabled": true}}'),
    ('pro', '{HIGH_IMPACT_EVENT,REGIONAL_RISK_SPIKE,ASSET_RISK_SPIKE}', NULL,
     '{"email": {"enabled": true}, "telegram": {"enabled": true}, "sms": {"enabled": true}}');
INSERT INTO user_plans (user_id, plan)
SELECT u, CASE WHEN u <= 10 THEN 'pro' ELSE 'trader' END FROM generate_series(1, 25) AS u;

INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold, enabled, delivery_mode)
SELECT u, 'HIGH_IMPACT_EVENT', 'global', NULL, 4, true, NULL FROM generate_series(1, 40) AS u
UNION ALL
SELECT u, 'REGIONAL_RISK_SPIKE', 'Europe', NULL, NULL, u <> 11, NULL FROM generate_series(1, 25) AS u
UNION ALL
SELECT u, 'ASSET_RISK_SPIKE', 'Europe', 'oil', NULL, true, NULL FROM generate_series(1, 25, 2) AS u;

INSERT INTO events (id, title, region, category, severity_score, inserted_at) VALUES
    (501, 'Explosion at Rotterdam refinery', 'Europe', 'infrastructure', 5, '2026-10-05 08:55:00'),
    (502, 'Typhoon closes Ningbo port', 'Asia', 'weather', 4, '2026-10-05 10:50:00'),
    (503, 'Tanker collision in the Strait of Malacca', 'Asia', 'shipping', 4, '2026-10-12 14:50:00'),
    (504, 'Minor outage at a Polish compressor station', 'Europe', 'infrastructure', 2, '2026-10-12 15:00:00');

INSERT INTO risk_indices (id, region, window_days, risk_score, trend, calculated_at) VALUES
    (1, 'Europe', 7, 82, 'up', '2026-10-06 06:00:00'),
    (2, 'Asia', 7, 75, 'up', '2026-10-06 07:05:00'),
    (3, 'Middle East', 7, 91, 'up', '2026-10-07 23:58:00'),
    (4, 'Europe', 7, 85, 'up', '2026-10-08 06:00:00'),
    (5, 'Europe', 30, 60, 'flat', '2026-10-06 05:00:00');

INSERT INTO asset_risk (id, asset, region, window_days, risk_score, direction, calculated_at) VALUES
    (1, 'oil', 'Europe', 7, 88, 'up', '2026-10-06 06:00:00'),
    (2, 'gas', 'Europe', 7, 72, 'up', '2026-10-06 06:00:00');

-- Fingerprint after the upgrade, and fate, in the comment of each row.
INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, body, driver_event_ids,
                          cooldown_key, created_at) VALUES
    -- HIGH_IMPACT_EVENT:501; kept (oldest)
    (1, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'Explosion at Rotterdam refinery',
     'Severity 5/5 event in Europe (infrastructure).', '{501}', 'HIGH_IMPACT_EVENT:Europe:2026-10-05T09', '2026-10-05 09:00:10'),
    -- HIGH_IMPACT_EVENT:501; duplicate of 1 (the next hourly run saw the same event)
    (2, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'Explosion at Rotterdam refinery',
     'Severity 5/5 event in Europe (infrastructure).', '{501}', 'HIGH_IMPACT_EVENT:Europe:2026-10-05T10', '2026-10-05 10:00:02'),
    -- HIGH_IMPACT_EVENT:502
    (3, 'HIGH_IMPACT_EVENT', 'Asia', '{}', 4, 'Typhoon closes Ningbo port',
     'Severity 4/5 event in Asia (weather).', '{502}', 'HIGH_IMPACT_EVENT:Asia:2026-10-05T11', '2026-10-05 11:00:00'),
    -- REGIONAL_RISK_SPIKE:Europe:2026-10-06; kept; 5 and 6 are its duplicates (three overlapping runs)
    (4, 'REGIONAL_RISK_SPIKE', 'Europe', '{}', 4, 'Regional risk spike in Europe',
     'The 7-day risk index for Europe is 82.0.', '{}', 'REGIONAL_RISK_SPIKE:Europe:2026-10-06T06', '2026-10-06 06:59:30'),
    (5, 'REGIONAL_RISK_SPIKE', 'Europe', '{}', 4, 'Regional risk spike in Europe',
     'The 7-day risk index for Europe is 82.0.', '{}', 'REGIONAL_RISK_SPIKE:Europe:2026-10-06T07', '2026-10-06 07:00:05'),
    (6, 'REGIONAL_RISK_SPIKE', 'Europe', '{}', 4, 'Regional risk spike in Europe',
     'The 7-day risk index for Europe is 82.0.', '{}', 'REGIONAL_RISK_SPIKE:Europe:2026-10-06T07:b', '2026-10-06 07:00:09'),
    -- REGIONAL_RISK_SPIKE:Asia:2026-10-06 (same type and day, another region: not a duplicate)
    (7, 'REGIONAL_RISK_SPIKE', 'Asia', '{}', 3, 'Regional risk spike in Asia',
     'The 7-day risk index for Asia is 75.0.', '{}', 'REGIONAL_RISK_SPIKE:Asia:2026-10-06T07', '2026-10-06 07:10:00'),
    -- ASSET_RISK_SPIKE:Europe:oil:2026-10-06; kept; 9 is its duplicate
    (8, 'ASSET_RISK_SPIKE', 'Europe', '{oil}', 4, 'Oil risk spike in Europe',
     'The 7-day oil risk score for Europe is 88.0.', '{}', 'ASSET_RISK_SPIKE:Europe:oil:2026-10-06T06', '2026-10-06 06:59:50'),
    (9, 'ASSET_RISK_SPIKE', 'Europe', '{oil}', 4, 'Oil risk spike in Europe',
     'The 7-day oil risk score for Europe is 88.0.', '{}', 'ASSET_RISK_SPIKE:Europe:oil:2026-10-06T07', '2026-10-06 07:00:01'),
    -- ASSET_RISK_SPIKE:Europe:gas:2026-10-06 (another asset: not a duplicate of 8)
    (10, 'ASSET_RISK_SPIKE', 'Europe', '{gas}', 3, 'Gas risk spike in Europe',
     'The 7-day gas risk score for Europe is 72.0.', '{}', 'ASSET_RISK_SPIKE:Europe:gas:2026-10-06T07', '2026-10-06 07:00:01'),
    -- REGIONAL_RISK_SPIKE:Middle East:2026-10-07: created after midnight from the risk row of
    -- 2026-10-07 23:58, so the day is the row's (as Phase A computes it), not created_at's.
    -- Kept; 12 is its duplicate.
    (11, 'REGIONAL_RISK_SPIKE', 'Middle East', '{}', 5, 'Regional risk spike in Middle East',
     'The 7-day risk index for Middle East is 91.0.', '{}', 'REGIONAL_RISK_SPIKE:Middle East:2026-10-08T00', '2026-10-08 00:03:00'),
    (12, 'REGIONAL_RISK_SPIKE', 'Middle East', '{}', 5, 'Regional risk spike in Middle East',
     'The 7-day risk index for Middle East is 91.0.', '{}', 'REGIONAL_RISK_SPIKE:Middle East:2026-10-08T01', '2026-10-08 01:00:02'),
    -- REGIONAL_RISK_SPIKE:Europe:2026-10-08 (a new reading two days later: not a duplicate of 4)
    (13, 'REGIONAL_RISK_SPIKE', 'Europe', '{}', 4, 'Regional risk spike in Europe',
     'The 7-day risk index for Europe is 85.0 (previous 82.0).', '{}', 'REGIONAL_RISK_SPIKE:Europe:2026-10-08T06', '2026-10-08 06:30:00'),
    -- v1.0 recorded no driver event: fallback fingerprint. 15 is a copy of 14 (same headline, same
    -- day): same fallback, merged. 16 has another headline: its own fallback, kept.
    (14, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'Refinery fire at Rotterdam',
     'Severity 5/5 event in Europe.', '{}', 'HIGH_IMPACT_EVENT:Europe:2026-10-09T08', '2026-10-09 08:00:00'),
    (15, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'Refinery fire at Rotterdam',
     'Severity 5/5 event in Europe.', '{}', 'HIGH_IMPACT_EVENT:Europe:2026-10-09T09', '2026-10-09 09:00:01'),
    (16, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 4, 'Pipeline outage in Norway',
     'Severity 4/5 event in Europe.', '{}', 'HIGH_IMPACT_EVENT:Europe:2026-10-09T09:b', '2026-10-09 09:00:01'),
    -- Two assets: the contract's rule needs one; fallback.
    (17, 'ASSET_RISK_SPIKE', 'Europe', '{oil,gas}', 4, 'Oil and gas risk spike in Europe',
     'Oil 88.0, gas 72.0.', '{}', 'ASSET_RISK_SPIKE:Europe:oil+gas:2026-10-09T10', '2026-10-09 10:00:00'),
    -- A v1-only alert type: fallback; 19 is a week later, not a duplicate.
    (18, 'MARKET_NOTE', 'global', '{}', 2, 'Weekly market note', 'Prices steady.', '{}',
     'MARKET_NOTE:global:2026-10-10T12', '2026-10-10 12:00:00'),
    (19, 'MARKET_NOTE', 'global', '{}', 2, 'Weekly market note', 'Prices up.', '{}',
     'MARKET_NOTE:global:2026-10-17T12', '2026-10-17 12:00:00'),
    -- HIGH_IMPACT_EVENT:503
    (20, 'HIGH_IMPACT_EVENT', 'Asia', '{}', 4, 'Tanker collision in the Strait of Malacca',
     'Severity 4/5 event in Asia (shipping).', '{503}', 'HIGH_IMPACT_EVENT:Asia:2026-10-12T15', '2026-10-12 15:00:00');

-- Deliveries of the duplicate events, and rows that break a v2 rule. Fate after the upgrade
-- in the comment; "removed" rows are copied whole into alerts_legacy_upgrade_log.
INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, status, sent_at, provider_message_id,
                                   opened_at, created_at) VALUES
    -- events 1 and 2 (2 merges into 1)
    (1, 1, 1, 'email', 'sent', '2026-10-05 09:00:40', 'ses-0001', '2026-10-05 09:30:00', '2026-10-05 09:00:12'),  -- kept: sent
    (2, 2, 1, 'email', 'queued', NULL, NULL, NULL, '2026-10-05 10:00:03'),                                 -- removed: 1 was sent
    (3, 1, 2, 'email', 'failed', NULL, NULL, NULL, '2026-10-05 09:00:12'),                                 -- removed: 4 was sent
    (4, 2, 2, 'email', 'sent', '2026-10-05 10:00:30', 'ses-0004', NULL, '2026-10-05 10:00:03'),            -- kept, moved to event 1
    (5, 1, 3, 'telegram', 'delivered', '2026-10-05 09:00:20', 'tg-0005', NULL, '2026-10-05 09:00:12'),     -- kept, now sent (oldest)
    (6, 2, 3, 'telegram', 'sent', '2026-10-05 10:00:25', 'tg-0006', NULL, '2026-10-05 10:00:03'),          -- removed: 5 sent earlier
    (7, 2, 4, 'email', 'sent', '2026-10-05 10:00:31', 'ses-0007', NULL, '2026-10-05 10:00:03'),            -- kept, moved to event 1
    (8, 1, 5, 'email', 'pending', NULL, NULL, NULL, '2026-10-05 09:00:12'),                                -- kept, now queued (oldest)
    (9, 2, 5, 'email', 'pending', NULL, NULL, NULL, '2026-10-05 10:00:03'),                                -- removed
    (10, 1, 6, 'sms', 'sending', NULL, NULL, NULL, '2026-10-05 09:00:12'),                                 -- kept: sending beats queued
    (11, 2, 6, 'sms', 'queued', NULL, NULL, NULL, '2026-10-05 10:00:03'),                                  -- removed
    -- events 4, 5 and 6 (5 and 6 merge into 4)
    (12, 4, 1, 'email', 'sent', '2026-10-06 07:00:00', 'ses-0012', NULL, '2026-10-06 06:59:31'),           -- kept
    (13, 5, 1, 'email', 'sent', '2026-10-06 07:00:10', 'ses-0013', NULL, '2026-10-06 07:00:06'),           -- removed: 12 sent earlier
    (14, 6, 1, 'email', 'queued', NULL, NULL, NULL, '2026-10-06 07:00:10'),                                -- removed
    (15, 4, 8, 'telegram', 'bounced', NULL, NULL, NULL, '2026-10-06 06:59:31'),                            -- kept, now failed: beats queued
    (16, 5, 8, 'telegram', 'pending', NULL, NULL, NULL, '2026-10-06 07:00:06'),                            -- removed
    (17, 5, 9, 'email', 'sent', NULL, 'ses-0017', NULL, '2026-10-06 07:00:06'),                            -- kept (oldest sent), moved to 4, sent_at = created_at
    (18, 6, 9, 'email', 'delivered', '2026-10-06 07:00:40', 'ses-0018', '2026-10-06 08:00:00', '2026-10-06 07:00:10'), -- removed
    -- events 8 and 9 (9 merges into 8)
    (19, 8, 10, 'email', 'sent', '2026-10-06 07:00:20', 'ses-0019', NULL, '2026-10-06 06:59:51'),          -- kept
    (20, 9, 10, 'email', 'sent', '2026-10-06 07:00:21', 'ses-0020', NULL, '2026-10-06 07:00:02'),          -- removed
    (21, 9, 11, 'email', 'queued', NULL, NULL, NULL, '2026-10-06 07:00:02'),                               -- kept, moved to 8
    -- events 11 and 12 (12 merges into 11)
    (22, 11, 12, 'email', 'skipped', NULL, NULL, NULL, '2026-10-08 00:03:01'),                             -- removed: 23 was sent
    (23, 12, 12, 'email', 'sent', '2026-10-08 01:00:30', 'ses-0023', NULL, '2026-10-08 01:00:03'),         -- kept, moved to 11
    -- events 14 and 15 (15 merges into 14)
    (24, 14, 1, 'email', 'sent', '2026-10-09 08:00:30', 'ses-0024', NULL, '2026-10-09 08:00:01'),          -- kept
    (25, 15, 1, 'email', 'sent', '2026-10-09 09:00:30', 'ses-0025', NULL, '2026-10-09 09:00:02'),          -- removed
    (26, 14, 13, 'telegram', 'failed', NULL, NULL, NULL, '2026-10-09 08:00:01'),                           -- kept (oldest), last_error filled
    (27, 15, 13, 'telegram', 'failed', NULL, NULL, NULL, '2026-10-09 09:00:02'),                           -- removed
    -- not duplicates, but breaking a v2 rule
    (28, 3, 14, 'email', 'failed', '2026-10-05 11:00:30', 'ses-0028', NULL, '2026-10-05 11:00:01'),        -- sent_at moves into last_error
    (29, 7, 15, 'sms', 'sent', NULL, 'tw-0029', NULL, '2026-10-06 07:10:01'),                              -- sent_at = created_at
    (30, 13, 16, 'email', 'sending', NULL, NULL, NULL, '2026-10-08 06:30:01');                             -- sending: attempts 1, lease ended

-- The ordinary deliveries of the events that have no duplicate, as v1 wrote them (with
-- the v1 application's own ON CONFLICT statement).
INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, status, sent_at, provider_message_id,
                                   opened_at, created_at)
SELECT 100 + row_number() OVER (ORDER BY e.id, u, ch.channel),
       e.id, u, ch.channel,
       s.status,
       CASE WHEN s.status IN ('sent', 'delivered') THEN e.created_at + interval '20 seconds' END,
       CASE WHEN s.status IN ('sent', 'delivered') THEN format('%s-%s-%s', ch.channel, e.id, u) END,
       CASE WHEN s.status = 'delivered' AND u % 2 = 0 THEN e.created_at + interval '1 hour' END,
       e.created_at + interval '15 seconds'
  FROM alert_events e
 CROSS JOIN generate_series(1, 40) AS u
 CROSS JOIN LATERAL (VALUES ('email'), ('telegram')) AS ch (channel)
 CROSS JOIN LATERAL (SELECT (ARRAY['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'sent', 'sent',
                                   'pending', 'failed', 'bounced'])[(u * 7 + e.id) % 10 + 1] AS status) s
 WHERE e.id IN (3, 7, 10, 13, 16, 17, 18, 19, 20)
   AND (u + e.id) % 4 = 0
   AND (ch.channel = 'email' OR u % 3 = 0)
ON CONFLICT (user_id, alert_event_id, channel) DO NOTHING;

SELECT setval('users_id_seq', (SELECT max(id) FROM users));
SELECT setval('events_id_seq', (SELECT max(id) FROM events));
SELECT setval('risk_indices_id_seq', (SELECT max(id) FROM risk_indices));
SELECT setval('asset_risk_id_seq', (SELECT max(id) FROM asset_risk));
SELECT setval('user_alert_prefs_id_seq', (SELECT max(id) FROM user_alert_prefs));
SELECT setval('alert_events_id_seq', (SELECT max(id) FROM alert_events));
SELECT setval('user_alert_deliveries_id_seq', (SELECT max(id) FROM user_alert_deliveries));
