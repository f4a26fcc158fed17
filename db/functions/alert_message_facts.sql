-- What a message says beyond the claim (alerts/event_facts.py renders it): per alert event,
-- when it happened and why it fired. Read as the engine's owner, so a runner login that may
-- only execute the engine's functions (alerts_runner) gets the facts too. Changes nothing.

-- The first of candidates that the host's events table has with one of the accepted types
-- (as format_type names them; a domain by its base type), NULL when none: optional columns are
-- used, never required. Read from pg_attribute: a few microseconds, not information_schema's join.
CREATE OR REPLACE FUNCTION alerts_optional_event_column(candidates text[], accepted_types text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT a.attname::text
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
      JOIN unnest(candidates) WITH ORDINALITY AS wanted (column_name, preference)
        ON wanted.column_name = a.attname::text
     WHERE a.attrelid = to_regclass('public.events') AND a.attnum > 0 AND NOT a.attisdropped
       AND format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, NULL) = ANY (accepted_types)
     ORDER BY wanted.preference
     LIMIT 1
$$;
COMMENT ON FUNCTION alerts_optional_event_column(text[], text[]) IS
    'Internal: the first of the candidate columns that events has with an accepted type, or NULL. Example: SELECT alerts_optional_event_column(ARRAY[''source_url'', ''url''], ARRAY[''text'']);';

CREATE OR REPLACE FUNCTION alert_message_facts(alert_event_ids bigint[])
RETURNS TABLE (
    id bigint,
    alert_type text,
    occurred_at timestamptz,
    category text,
    summary text,
    source_url text,
    source_name text,
    risk_score numeric,
    calculated_at timestamptz,
    trend text,
    previous_score numeric,
    previous_at timestamptz,
    spike_window_days integer,
    spike_min_score numeric,
    spike_min_rise_pct numeric,
    high_impact_min_severity integer
)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
-- Guarantees: changes nothing. Per listed alert event: a high-impact alert's driver event (its
-- time: the first of occurred_at, event_time, event_at, happened_at, published_at that events
-- has as a time, else inserted_at; its category; summary or description; source_url, url, link,
-- source_link or article_url; source_name, source or publisher); a spike's reading (the newest
-- valid one of the fingerprint's day that Phase A could see) and the valid reading before it;
-- the thresholds of alerts_config. Naive host timestamps are read as UTC (the function's time
-- zone), and compared as stored, so the readings' indexes (source_indexes, partial to the lengths
-- Phase A accepts) serve every look-up: a few index tuples per message whatever the history.
-- Lock: none.
DECLARE
    time_types constant text[] := ARRAY['timestamp with time zone', 'timestamp without time zone', 'date'];
    text_types constant text[] := ARRAY['text', 'character varying', 'character'];
    occurred_column text := alerts_optional_event_column(
        ARRAY['occurred_at', 'event_time', 'event_at', 'happened_at', 'published_at'], time_types);
    summary_column text := alerts_optional_event_column(ARRAY['summary', 'description'], text_types);
    url_column text := alerts_optional_event_column(
        ARRAY['source_url', 'url', 'link', 'source_link', 'article_url'], text_types);
    source_column text := alerts_optional_event_column(ARRAY['source_name', 'source', 'publisher'], text_types);
BEGIN
    RETURN QUERY EXECUTE format($facts$
    WITH wanted_alerts AS (
        SELECT ae.id, ae.alert_type, ae.scope_region, ae.scope_assets, ae.driver_event_ids, ae.created_at,
               CASE WHEN ae.event_fingerprint ~ '[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                    THEN (right(ae.event_fingerprint, 10)::date)::timestamp AT TIME ZONE 'UTC' END AS reading_day
          FROM alert_events ae
         WHERE ae.id = ANY ($1)
    ),
    alert_settings AS (
        SELECT c.spike_window_days, c.spike_min_score, c.spike_min_rise_pct, c.high_impact_min_severity
          FROM alerts_config c
         LIMIT 1
    )
    SELECT wa.id::bigint, wa.alert_type::text,
           driver.occurred_at, driver.category, driver.summary, driver.source_url, driver.source_name,
           reading.risk_score, reading.calculated_at, reading.trend,
           previous_reading.risk_score, previous_reading.calculated_at,
           s.spike_window_days::integer, s.spike_min_score::numeric, s.spike_min_rise_pct::numeric,
           s.high_impact_min_severity::integer
      FROM wanted_alerts wa
      LEFT JOIN alert_settings s ON true
      LEFT JOIN LATERAL (
            SELECT %s::timestamptz AS occurred_at, e.category::text AS category,
                   %s::text AS summary, %s::text AS source_url, %s::text AS source_name
              FROM events e
             WHERE wa.alert_type = 'HIGH_IMPACT_EVENT' AND e.id = wa.driver_event_ids[1]
      ) driver ON true
      LEFT JOIN LATERAL (
            -- the reading Phase A fired on: the newest valid one of the fingerprint's day it could see
            (SELECT r.id, r.risk_score::numeric AS risk_score, r.calculated_at::timestamptz AS calculated_at,
                    r.trend::text AS trend
               FROM risk_indices r
              WHERE wa.alert_type = 'REGIONAL_RISK_SPIKE'
                AND btrim(r.region) = wa.scope_region AND length(btrim(r.region)) <= 200
                AND r.window_days = s.spike_window_days
                AND r.risk_score::numeric BETWEEN 0 AND 100
                AND r.calculated_at >= wa.reading_day
                AND r.calculated_at < wa.reading_day + interval '1 day'
                AND r.calculated_at <= wa.created_at
              ORDER BY r.calculated_at DESC, r.id DESC
              LIMIT 1)
            UNION ALL
            (SELECT a.id, a.risk_score::numeric, a.calculated_at::timestamptz, a.direction::text
               FROM asset_risk a
              WHERE wa.alert_type = 'ASSET_RISK_SPIKE'
                AND btrim(a.region) = wa.scope_region AND lower(btrim(a.asset)) = wa.scope_assets[1]
                AND length(btrim(a.region)) <= 200 AND length(btrim(a.asset)) <= 100
                AND a.window_days = s.spike_window_days
                AND a.risk_score::numeric BETWEEN 0 AND 100
                AND a.calculated_at >= wa.reading_day
                AND a.calculated_at < wa.reading_day + interval '1 day'
                AND a.calculated_at <= wa.created_at
              ORDER BY a.calculated_at DESC, a.id DESC
              LIMIT 1)
      ) reading ON true
      LEFT JOIN LATERAL (
            -- the baseline: the valid reading just before it
            (SELECT r.risk_score::numeric AS risk_score, r.calculated_at::timestamptz AS calculated_at
               FROM risk_indices r
              WHERE wa.alert_type = 'REGIONAL_RISK_SPIKE'
                AND btrim(r.region) = wa.scope_region AND length(btrim(r.region)) <= 200
                AND r.window_days = s.spike_window_days
                AND r.risk_score::numeric BETWEEN 0 AND 100
                AND (r.calculated_at, r.id) < (reading.calculated_at, reading.id)
              ORDER BY r.calculated_at DESC, r.id DESC
              LIMIT 1)
            UNION ALL
            (SELECT a.risk_score::numeric, a.calculated_at::timestamptz
               FROM asset_risk a
              WHERE wa.alert_type = 'ASSET_RISK_SPIKE'
                AND btrim(a.region) = wa.scope_region AND lower(btrim(a.asset)) = wa.scope_assets[1]
                AND length(btrim(a.region)) <= 200 AND length(btrim(a.asset)) <= 100
                AND a.window_days = s.spike_window_days
                AND a.risk_score::numeric BETWEEN 0 AND 100
                AND (a.calculated_at, a.id) < (reading.calculated_at, reading.id)
              ORDER BY a.calculated_at DESC, a.id DESC
              LIMIT 1)
      ) previous_reading ON true
    $facts$,
        coalesce('e.' || quote_ident(occurred_column), 'e.inserted_at'),
        coalesce('e.' || quote_ident(summary_column), 'NULL'),
        coalesce('e.' || quote_ident(url_column), 'NULL'),
        coalesce('e.' || quote_ident(source_column), 'NULL'))
    USING alert_event_ids;
END;
$$;
COMMENT ON FUNCTION alert_message_facts(bigint[]) IS
    'What the messages of the given alert events say beyond the claim: the driver event''s time, category, summary and source (from optional host columns), a spike''s reading and the one before it, the thresholds. Changes nothing. Example: SELECT * FROM alert_message_facts(ARRAY[1, 2]);';

-- The runner's way in: facts only for the alert events of rows the caller holds a claim on.
CREATE OR REPLACE FUNCTION alert_message_facts(alert_event_ids bigint[], claim_tokens bigint[])
RETURNS TABLE (
    id bigint,
    alert_type text,
    occurred_at timestamptz,
    category text,
    summary text,
    source_url text,
    source_name text,
    risk_score numeric,
    calculated_at timestamptz,
    trend text,
    previous_score numeric,
    previous_at timestamptz,
    spike_window_days integer,
    spike_min_score numeric,
    spike_min_rise_pct numeric,
    high_impact_min_severity integer
)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes nothing; returns alert_message_facts(ids) for only those listed alert
-- events that have a delivery still 'sending' under one of the given claim tokens, or that are
-- a queued member of a digest still 'sending' under one of them. Claim tokens are random
-- (claim_deliveries, claim_digests), so holding one is the proof of the claim: a runner login
-- learns nothing about events it is not sending. Lock: none.
    SELECT f.*
      FROM alert_message_facts(ARRAY(
               SELECT d.alert_event_id::bigint
                 FROM user_alert_deliveries d
                WHERE d.alert_event_id = ANY (alert_event_ids)
                  AND d.status = 'sending' AND d.claim_token = ANY (claim_tokens)
               UNION
               SELECT d.alert_event_id::bigint
                 FROM alert_digests g
                 JOIN user_alert_deliveries d ON d.digest_id = g.id
                WHERE g.status = 'sending' AND g.claim_token = ANY (claim_tokens)
                  AND d.alert_event_id = ANY (alert_event_ids) AND d.status = 'queued')) f
$$;
COMMENT ON FUNCTION alert_message_facts(bigint[], bigint[]) IS
    'alert_message_facts(ids) for the runner: only the events of deliveries or digests the caller holds (sending, under one of the given claim tokens). Example: SELECT * FROM alert_message_facts(ARRAY[1, 2], ARRAY[8123456789012345678]);';
