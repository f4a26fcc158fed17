-- Deploy alerts_v2:legacy_merge_duplicates
-- Merges the duplicates a pre-v2 installation left behind, so that the engine's unique
-- keys (built next, by indexes_concurrently) can exist. Guarantees, in one transaction:
--   * events: of the alert_events rows sharing an event_fingerprint (copies of one alert
--     made by overlapping runs) the oldest is kept (created_at, then id); the others'
--     deliveries are re-pointed to it and the copies are removed;
--   * deliveries: of the rows that then share (alert_event_id, user_id, channel,
--     delivery_kind) the one with the most advanced status is kept - sent, then sending,
--     failed, skipped, queued; the oldest among equals - so a delivery that was sent stays
--     sent and its user is never alerted again;
--   * every removed row is first copied, whole, into alerts_legacy_upgrade_log
--     (kind 'merged_row', merged_into_id = the row kept), so no history is lost;
--   * rows that are not duplicates are not touched (only re-pointed deliveries change,
--     in alert_event_id alone).
-- Once the unique keys exist, a deploy skips the search (no duplicate can exist).
-- Row locks only: the removed and re-pointed rows, under lock_timeout.
BEGIN;
SET LOCAL lock_timeout = '5s';

DO $$
DECLARE
    events_unique boolean;
    deliveries_unique boolean;
BEGIN
    -- A valid unique index on event_fingerprint rules out duplicate events.
    events_unique := EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = 'alert_events'::regclass AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
           AND i.indkey::int2[] = ARRAY[(SELECT attnum FROM pg_attribute
                                          WHERE attrelid = 'alert_events'::regclass
                                            AND attname = 'event_fingerprint')]::int2[]);
    -- A valid unique index over some of (alert_event_id, user_id, channel, delivery_kind),
    -- for example the pre-v2 (user_id, alert_event_id, channel), rules out duplicates
    -- among the deliveries of one event.
    deliveries_unique := EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = 'user_alert_deliveries'::regclass AND i.indisunique AND i.indisvalid
           AND i.indpred IS NULL AND i.indexprs IS NULL
           AND i.indkey::int2[] <@ ARRAY(SELECT attnum FROM pg_attribute
                                          WHERE attrelid = 'user_alert_deliveries'::regclass
                                            AND attname IN ('alert_event_id', 'user_id', 'channel', 'delivery_kind')));

    CREATE TEMPORARY TABLE legacy_event_merge (duplicate_id bigint PRIMARY KEY, keeper_id bigint NOT NULL)
        ON COMMIT DROP;
    IF NOT events_unique THEN
        INSERT INTO legacy_event_merge (duplicate_id, keeper_id)
        SELECT copies.id, copies.keeper_id
          FROM (SELECT ae.id,
                       first_value(ae.id) OVER (PARTITION BY ae.event_fingerprint ORDER BY ae.created_at, ae.id)
                           AS keeper_id
                  FROM alert_events ae
                 WHERE ae.event_fingerprint IN (SELECT event_fingerprint FROM alert_events
                                                 GROUP BY event_fingerprint HAVING count(*) > 1)) copies
         WHERE copies.id <> copies.keeper_id;
    END IF;

    IF deliveries_unique AND NOT EXISTS (SELECT 1 FROM legacy_event_merge) THEN
        RETURN;
    END IF;
    -- Locked first: a delivery some other session inserts for a copy meanwhile waits for
    -- this transaction and then fails on the foreign key, instead of being cascaded away.
    PERFORM 1 FROM alert_events ae JOIN legacy_event_merge em ON em.duplicate_id = ae.id FOR UPDATE OF ae;

    -- Deliveries that collide once their event is the kept copy: only those of merged
    -- events (and of the copies kept) when a unique index rules out other duplicates,
    -- else all of them.
    CREATE TEMPORARY TABLE legacy_delivery_merge (duplicate_id bigint PRIMARY KEY, keeper_id bigint NOT NULL)
        ON COMMIT DROP;
    INSERT INTO legacy_delivery_merge (duplicate_id, keeper_id)
    SELECT ranked.id, ranked.keeper_id
      FROM (SELECT d.id,
                   first_value(d.id) OVER (
                       PARTITION BY coalesce(m.keeper_id, d.alert_event_id), d.user_id, d.channel, d.delivery_kind
                       ORDER BY CASE d.status WHEN 'sent' THEN 1 WHEN 'sending' THEN 2 WHEN 'failed' THEN 3
                                              WHEN 'skipped' THEN 4 ELSE 5 END,
                                d.created_at, d.id) AS keeper_id
              FROM user_alert_deliveries d
              LEFT JOIN legacy_event_merge m ON m.duplicate_id = d.alert_event_id
             WHERE NOT deliveries_unique
                OR d.alert_event_id IN (SELECT duplicate_id FROM legacy_event_merge
                                        UNION SELECT keeper_id FROM legacy_event_merge)) ranked
     WHERE ranked.id <> ranked.keeper_id;

    INSERT INTO alerts_legacy_upgrade_log (kind, table_name, row_id, merged_into_id, detail)
    SELECT 'merged_row', 'user_alert_deliveries', d.id, dm.keeper_id, to_jsonb(d)
      FROM user_alert_deliveries d
      JOIN legacy_delivery_merge dm ON dm.duplicate_id = d.id
     ORDER BY d.id;
    DELETE FROM user_alert_deliveries d USING legacy_delivery_merge dm WHERE d.id = dm.duplicate_id;

    UPDATE user_alert_deliveries d
       SET alert_event_id = em.keeper_id
      FROM legacy_event_merge em
     WHERE d.alert_event_id = em.duplicate_id;

    INSERT INTO alerts_legacy_upgrade_log (kind, table_name, row_id, merged_into_id, detail)
    SELECT 'merged_row', 'alert_events', ae.id, em.keeper_id, to_jsonb(ae)
      FROM alert_events ae
      JOIN legacy_event_merge em ON em.duplicate_id = ae.id
     ORDER BY ae.id;
    DELETE FROM alert_events ae USING legacy_event_merge em WHERE ae.id = em.duplicate_id;
END
$$;
COMMIT;
