-- Phase A: seeded events, risk_indices and asset_risk become exactly the alert events the
-- contract describes (fingerprint formats with UTC dates, severity mapping, score and 20%
-- rise rules, configurable thresholds), idempotently, counting invalid rows without failing.
BEGIN;
SELECT plan(50);

-- A session time zone 14 hours ahead of UTC: a row calculated at 23:59 UTC is already
-- "tomorrow" here, so a fingerprint date taken in the session time zone would be wrong.
SET LOCAL timezone = 'Pacific/Kiritimati';

DELETE FROM user_alert_deliveries;
DELETE FROM alert_events;
DELETE FROM events;
DELETE FROM risk_indices;
DELETE FROM asset_risk;
UPDATE alerts_config
   SET high_impact_min_severity = DEFAULT, high_impact_lookback = DEFAULT, spike_window_days = DEFAULT,
       spike_min_score = DEFAULT, spike_min_rise_pct = DEFAULT, spike_max_age = DEFAULT,
       fanout_lookback = DEFAULT;

-- edge: 23:59 UTC yesterday (always in the past, always less than 2 days old).
-- utc_day: its date in UTC, computed here without the function under test.
CREATE TEMP TABLE clock AS
SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') - interval '1 minute' AS edge,
       to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD') AS utc_day;

INSERT INTO events (id, title, region, category, severity_score, inserted_at) VALUES
    (910001, 'Refinery fire', 'Europe', 'energy', 5, now() - interval '1 hour'),
    (910002, 'Port strike', 'Asia', 'logistics', 4, now() - interval '2 hours'),
    (910003, 'Minor outage', 'Europe', 'energy', 3, now() - interval '1 hour'),
    (910004, 'Old blast', 'Europe', 'energy', 5, now() - interval '25 hours'),
    (910005, 'No region', NULL, 'energy', 5, now() - interval '1 hour'),
    (910006, 'Bad severity', 'Asia', 'energy', 9, now() - interval '1 hour'),
    (910007, repeat('x', 300), 'Africa', 'energy', 4, now() - interval '1 hour');

INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT r.region, r.window_days, r.risk_score, 'up', r.calculated_at
  FROM clock c,
       LATERAL (VALUES
           ('R90', 7, 90, c.edge),
           ('R89', 7, 89.9, c.edge),
           ('R80', 7, 80, c.edge),
           ('R70', 7, 70, c.edge),
           ('R69', 7, 69.9, c.edge),
           ('RISE25', 7, 40, c.edge - interval '1 day'), ('RISE25', 7, 50, c.edge),
           ('RISE20', 7, 40, c.edge - interval '1 day'), ('RISE20', 7, 48, c.edge),
           ('RISE12', 7, 40, c.edge - interval '1 day'), ('RISE12', 7, 45, c.edge),
           ('FALL', 7, 95, c.edge - interval '1 day'), ('FALL', 7, 60, c.edge),
           ('OLD', 7, 95, now() - interval '3 days'),
           ('W30', 30, 95, c.edge),
           ('BAD', 7, 150, c.edge)
       ) AS r (region, window_days, risk_score, calculated_at);

INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)
SELECT a.asset, a.region, 7, a.risk_score, 'up', a.calculated_at
  FROM clock c,
       LATERAL (VALUES
           ('oil', 'Gulf', 85, c.edge),
           ('gas', 'Gulf', 92, c.edge - interval '1 day'), ('gas', 'Gulf', 60, c.edge),
           ('fx', 'Europe', 90, c.edge)
       ) AS a (asset, region, risk_score, calculated_at);

CREATE TEMP TABLE run1 AS SELECT alerts_phase_a() AS r;
CREATE TEMP TABLE run1_fingerprints AS SELECT event_fingerprint FROM alert_events;

-- Precondition: the session time zone really does put edge on another day than UTC.
SELECT isnt((SELECT to_char(edge, 'YYYY-MM-DD') FROM clock), (SELECT utc_day FROM clock),
            'precondition: edge falls on different dates in the session time zone and in UTC');

-- Counts.
SELECT ok((SELECT r FROM run1) @> '{"phase": "a", "locked": true, "skipped": false}',
          'a run that did its work reports phase a, locked true, skipped false');
SELECT is((SELECT (r ->> 'created')::int FROM run1), 11, 'the first run creates 11 alert events');
SELECT is((SELECT r -> 'created_by_type' FROM run1),
          '{"HIGH_IMPACT_EVENT": 3, "REGIONAL_RISK_SPIKE": 6, "ASSET_RISK_SPIKE": 2}'::jsonb,
          'created_by_type counts each alert type');
SELECT is((SELECT (r ->> 'skipped_existing')::int FROM run1), 0, 'nothing existed before the first run');
SELECT is((SELECT (r ->> 'invalid_source_rows')::int FROM run1), 3,
          'NULL region, severity 9 and risk score 150 are counted as invalid source rows');

-- Fingerprints, exactly.
SELECT set_eq(
    'SELECT event_fingerprint FROM alert_events',
    $$SELECT f || CASE WHEN f LIKE 'HIGH%' THEN '' ELSE ':' || (SELECT utc_day FROM clock) END
        FROM unnest(ARRAY['HIGH_IMPACT_EVENT:910001', 'HIGH_IMPACT_EVENT:910002', 'HIGH_IMPACT_EVENT:910007',
                          'REGIONAL_RISK_SPIKE:R90', 'REGIONAL_RISK_SPIKE:R89', 'REGIONAL_RISK_SPIKE:R80',
                          'REGIONAL_RISK_SPIKE:R70', 'REGIONAL_RISK_SPIKE:RISE25', 'REGIONAL_RISK_SPIKE:RISE20',
                          'ASSET_RISK_SPIKE:Gulf:oil', 'ASSET_RISK_SPIKE:Europe:fx']) AS f$$,
    'the first run creates exactly the expected fingerprints');
SELECT is((SELECT count(*) FROM alert_events WHERE event_fingerprint = 'REGIONAL_RISK_SPIKE:R90:' || (SELECT utc_day FROM clock)),
          1::bigint, 'REGIONAL_RISK_SPIKE fingerprint is {region}:{YYYY-MM-DD of calculated_at in UTC}');
SELECT is((SELECT count(*) FROM alert_events WHERE event_fingerprint = 'ASSET_RISK_SPIKE:Gulf:oil:' || (SELECT utc_day FROM clock)),
          1::bigint, 'ASSET_RISK_SPIKE fingerprint is {region}:{asset}:{YYYY-MM-DD in UTC}');

-- HIGH_IMPACT_EVENT.
SELECT results_eq(
    $$SELECT alert_type, scope_region, scope_assets, severity, driver_event_ids, fanout_completed_at IS NULL
        FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910001'$$,
    $$VALUES ('HIGH_IMPACT_EVENT'::text, 'Europe'::text, '{}'::text[], 5, ARRAY[910001]::bigint[], true)$$,
    'a high-impact event keeps its region and severity and names its driver event');
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910002'), 4,
          'severity_score 4 fires at the default threshold with severity 4');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910003'$$,
                'severity_score 3 is below the default threshold of 4');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910004'$$,
                'an event inserted 25 hours ago is outside the 24-hour lookback');
SELECT is((SELECT length(headline) FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910007'), 200,
          'a 300-character title is cut to a 200-character headline');

-- Invalid rows are skipped, the valid ones around them still fire.
SELECT is_empty($$SELECT 1 FROM alert_events
                   WHERE event_fingerprint IN ('HIGH_IMPACT_EVENT:910005', 'HIGH_IMPACT_EVENT:910006')
                      OR scope_region = 'BAD'$$,
                'invalid rows (NULL region, severity 9, score 150) create no alert event');

-- Spike severity mapping.
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'REGIONAL_RISK_SPIKE:R90:%'), 5, 'score 90 maps to severity 5');
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'REGIONAL_RISK_SPIKE:R89:%'), 4, 'score 89.9 maps to severity 4');
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'REGIONAL_RISK_SPIKE:R80:%'), 4, 'score 80 maps to severity 4');
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'REGIONAL_RISK_SPIKE:R70:%'), 3, 'score 70 maps to severity 3');
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'ASSET_RISK_SPIKE:Europe:fx:%'), 5, 'asset score 90 maps to severity 5');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'R69'$$, 'score 69.9 with no previous row does not fire');

-- The 20% rise rule, against the previous row of the same region.
SELECT is((SELECT severity FROM alert_events WHERE event_fingerprint LIKE 'REGIONAL_RISK_SPIKE:RISE25:%'), 3,
          'a rise from 40 to 50 (25%) fires, with severity 3');
SELECT isnt_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'RISE20'$$, 'a rise from 40 to 48 (exactly 20%) fires');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'RISE12'$$, 'a rise from 40 to 45 (12.5%) does not fire');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'FALL'$$,
                'only the newest row counts: 95 then 60 does not fire');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE scope_region IN ('OLD', 'W30')$$,
                'rows older than spike_max_age or of another window_days do not fire');

-- Asset spikes: newest row per (region, asset).
SELECT results_eq(
    $$SELECT alert_type, scope_region, scope_assets, severity
        FROM alert_events WHERE event_fingerprint LIKE 'ASSET_RISK_SPIKE:Gulf:oil:%'$$,
    $$VALUES ('ASSET_RISK_SPIKE'::text, 'Gulf'::text, ARRAY['oil']::text[], 4)$$,
    'an asset spike is scoped to its region and asset, score 85 giving severity 4');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint LIKE 'ASSET_RISK_SPIKE:Gulf:gas:%'$$,
                'only the newest asset row counts: gas 92 then 60 does not fire');

-- Phase A never touches fanout_completed_at.
SELECT is((SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NOT NULL), 0::bigint,
          'fanout_completed_at stays NULL on every new event');

-- Later runs over the same sources create nothing.
SELECT lives_ok('SELECT alerts_phase_a()', 'a second run over the same sources does not fail on existing fingerprints');
CREATE TEMP TABLE run2 AS SELECT alerts_phase_a() AS r;
SELECT is((SELECT (r ->> 'created')::int FROM run2), 0, 'a further run creates 0');
SELECT is((SELECT (r ->> 'skipped_existing')::int FROM run2), 11, 'a further run reports the 11 as skipped_existing');
SELECT is((SELECT count(*) FROM alert_events), 11::bigint, 'still 11 alert events after the further runs');

-- Thresholds are read from alerts_config.
UPDATE alerts_config SET high_impact_min_severity = 3, spike_min_score = 60, spike_min_rise_pct = 10;
CREATE TEMP TABLE run3 AS SELECT alerts_phase_a() AS r;
SELECT is((SELECT r -> 'created_by_type' FROM run3),
          '{"HIGH_IMPACT_EVENT": 1, "REGIONAL_RISK_SPIKE": 3, "ASSET_RISK_SPIKE": 1}'::jsonb,
          'lowered thresholds create 5 more events');
SELECT isnt_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910003'$$,
                  'high_impact_min_severity = 3 lets severity_score 3 fire');
SELECT isnt_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'R69'$$,
                  'spike_min_score = 60 lets a score of 69.9 fire');
SELECT isnt_empty($$SELECT 1 FROM alert_events WHERE scope_region = 'RISE12'$$,
                  'spike_min_rise_pct = 10 lets a rise of 12.5% fire');
SELECT isnt_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint LIKE 'ASSET_RISK_SPIKE:Gulf:gas:%'$$,
                  'spike_min_score = 60 applies to asset spikes too');
SELECT set_eq(
    'SELECT event_fingerprint FROM run1_fingerprints',
    $$SELECT event_fingerprint FROM alert_events
       WHERE event_fingerprint NOT IN ('HIGH_IMPACT_EVENT:910003')
         AND scope_region NOT IN ('R69', 'RISE12', 'FALL')
         AND event_fingerprint NOT LIKE 'ASSET_RISK_SPIKE:Gulf:gas:%'$$,
    'the earlier events are untouched and the new ones are exactly 910003, R69, RISE12, FALL and Gulf gas');

UPDATE alerts_config SET high_impact_min_severity = 5, spike_min_score = 95, high_impact_lookback = '30 hours';
INSERT INTO events (id, title, region, category, severity_score, inserted_at) VALUES
    (910008, 'Four', 'Europe', 'energy', 4, now() - interval '1 hour'),
    (910009, 'Five', 'Europe', 'energy', 5, now() - interval '1 hour');
INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT r.region, 7, r.risk_score, 'up', c.edge
  FROM clock c, (VALUES ('R94', 94.9), ('R95', 95)) AS r (region, risk_score);
CREATE TEMP TABLE run4 AS SELECT alerts_phase_a() AS r;
SELECT is((SELECT r -> 'created_by_type' FROM run4),
          '{"HIGH_IMPACT_EVENT": 2, "REGIONAL_RISK_SPIKE": 1}'::jsonb,
          'raised thresholds and a longer lookback create exactly 3 events');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910008' OR scope_region = 'R94'$$,
                'high_impact_min_severity = 5 and spike_min_score = 95 hold back severity 4 and score 94.9');
SELECT is((SELECT count(*) FROM alert_events
            WHERE event_fingerprint IN ('HIGH_IMPACT_EVENT:910009', 'HIGH_IMPACT_EVENT:910004')
               OR scope_region = 'R95'), 3::bigint,
          'severity 5, score 95 and the 25-hour-old event (lookback 30 hours) fire');

-- The rise rule compares with the previous *valid* row: an invalid reading (NULL, or 150)
-- between 40 and 50 must not hide a 25% rise.
UPDATE alerts_config
   SET high_impact_min_severity = DEFAULT, high_impact_lookback = DEFAULT, spike_min_score = DEFAULT,
       spike_min_rise_pct = DEFAULT;
INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT r.region, 7, r.risk_score, 'up', c.edge - r.age
  FROM clock c,
       (VALUES ('GAPNULL', 40, interval '2 hours'), ('GAPNULL', NULL, interval '1 hour'), ('GAPNULL', 50, interval '0'),
               ('GAP150', 40, interval '2 hours'), ('GAP150', 150, interval '1 hour'), ('GAP150', 50, interval '0'))
       AS r (region, risk_score, age);
SELECT is((alerts_phase_a() ->> 'invalid_source_rows')::int, 5, 'the NULL and 150 readings are counted as invalid');
SELECT set_eq($$SELECT scope_region FROM alert_events WHERE scope_region LIKE 'GAP%'$$,
              ARRAY['GAPNULL', 'GAP150'],
              'an invalid reading between 40 and 50 does not hide the 25% rise');

-- An invalid newest reading is no reading: the older valid row behind it never fires instead.
INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)
SELECT r.region, 7, r.risk_score, 'up', c.edge - r.age
  FROM clock c,
       (VALUES ('NEWNULL', 90, interval '1 hour'), ('NEWNULL', NULL, interval '0'),
               ('NEW150', 90, interval '1 hour'), ('NEW150', 150, interval '0')) AS r (region, risk_score, age);
INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)
SELECT 'oil', 'NEWNULL', 7, r.risk_score, 'up', c.edge - r.age
  FROM clock c, (VALUES (95, interval '1 hour'), (NULL, interval '0')) AS r (risk_score, age);
-- An event inserted at 'infinity' would stay in the lookback for ever: it is invalid.
INSERT INTO events (id, title, region, category, severity_score, inserted_at)
VALUES (910090, 'Far future', 'Europe', 'energy', 5, 'infinity');
CREATE TEMP TABLE run6 AS SELECT alerts_phase_a() AS r;
SELECT is_empty($$SELECT 1 FROM alert_events WHERE scope_region IN ('NEWNULL', 'NEW150')$$,
                'a NULL or out-of-range newest reading fires nothing, not even from the older row behind it');
SELECT is_empty($$SELECT 1 FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:910090'$$,
                'an events row inserted at infinity fires nothing');
SELECT is((SELECT (r ->> 'invalid_source_rows')::int FROM run6), 9,
          'the invalid newest readings and the infinite event are counted as invalid (5 before them)');

-- Spike events record what they fired on, for Phase B's thresholds.
SELECT set_eq($$SELECT scope_region, risk_score, fired_on_rise FROM alert_events
                 WHERE scope_region IN ('GAPNULL', 'R95')$$,
              $$VALUES ('GAPNULL'::text, 50::numeric, true), ('R95', 95, false)$$,
              'a regional spike records its score and whether its rise rule held');
SELECT ok(NOT EXISTS (SELECT 1 FROM alert_events
                       WHERE alert_type = 'HIGH_IMPACT_EVENT' AND (risk_score IS NOT NULL OR fired_on_rise IS NOT NULL))
          AND NOT EXISTS (SELECT 1 FROM alert_events
                           WHERE alert_type = 'ASSET_RISK_SPIKE' AND (risk_score IS NULL OR fired_on_rise)),
          'high-impact events carry no score; asset spikes carry their score and never a rise');

-- A region or asset containing ':' is escaped in the fingerprint, so these two spikes do not collide.
INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)
SELECT r.asset, r.region, 7, 80, 'up', c.edge FROM clock c,
       (VALUES ('gas', 'Eu:oil'), ('oil:gas', 'Eu')) AS r (asset, region);
SELECT alerts_phase_a();
SELECT set_eq($$SELECT event_fingerprint FROM alert_events WHERE scope_region IN ('Eu:oil', 'Eu')$$,
              (SELECT ARRAY['ASSET_RISK_SPIKE:Eu\:oil:gas:' || utc_day, 'ASSET_RISK_SPIKE:Eu:oil\:gas:' || utc_day]
                 FROM clock),
              'two spikes whose region and asset differ only in where the ":" sits keep two fingerprints');

SELECT * FROM finish();
ROLLBACK;
