"""Set-based data generators (generate_series); each runs outside any timing."""

import json

import psycopg

ALL_TYPES = ["HIGH_IMPACT_EVENT", "REGIONAL_RISK_SPIKE", "ASSET_RISK_SPIKE"]
ASSETS = ["oil", "gas", "fx", "freight"]


def population(conn: psycopg.Connection, users: int) -> None:
    """users verified users on plan 'pro' (every alert type, email only, no daily cap), each
    with one enabled global HIGH_IMPACT_EVENT pref: every one of them is eligible."""
    config = {"email": {"enabled": True}, "telegram": {"enabled": False}, "sms": {"enabled": False}}
    conn.execute(
        "INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) "
        "VALUES ('pro', %s, NULL, %s) ON CONFLICT (plan_code) DO NOTHING",
        [ALL_TYPES, json.dumps(config)])
    conn.execute(
        "WITH new_users AS ("
        "  INSERT INTO users (email, email_verified, telegram_chat_id, phone_number)"
        "  SELECT 'user' || g || '@example.com', true, (100000 + g)::text, '+1555' || lpad(g::text, 7, '0')"
        "    FROM generate_series(1, %s) g RETURNING id),"
        " plans AS (INSERT INTO user_plans (user_id, plan) SELECT id, 'pro' FROM new_users)"
        " INSERT INTO user_alert_prefs (user_id, alert_type, region, enabled)"
        " SELECT id, 'HIGH_IMPACT_EVENT', 'global', true FROM new_users",
        [users])


def alert_events(conn: psycopg.Connection, count: int, *, fanned_out: bool) -> list[int]:
    """count HIGH_IMPACT_EVENT alert events created now; fanned_out sets fanout_completed_at."""
    rows = conn.execute(
        "INSERT INTO alert_events (alert_type, scope_region, severity, headline, body, driver_event_ids,"
        "                          event_fingerprint, fanout_completed_at)"
        " SELECT 'HIGH_IMPACT_EVENT', 'Europe', 5, 'Pipeline outage ' || g,"
        "        'Severity 5/5 event in Europe (supply).', ARRAY[g]::bigint[],"
        "        'BENCH:' || g || ':' || gen_random_uuid(), CASE WHEN %s THEN now() END"
        "   FROM generate_series(1, %s) g RETURNING id",
        [fanned_out, count]).fetchall()
    return [int(r[0]) for r in rows]


def queued_deliveries(conn: psycopg.Connection, event_ids: list[int]) -> int:
    """One queued instant email delivery per (event, user), all in one transaction, so they share
    one created_at, as a fanout leaves them."""
    cur = conn.execute(
        "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
        " SELECT e, u.id, 'email', 'instant' FROM unnest(%s::bigint[]) e CROSS JOIN users u",
        [event_ids])
    return cur.rowcount


def send_queue(conn: psycopg.Connection, events: int, users: int) -> int:
    """A Phase C starting state: users eligible users, events fanned-out events, events x users queued."""
    population(conn, users)
    return queued_deliveries(conn, alert_events(conn, events, fanned_out=True))


def phase_a_sources(conn: psycopg.Connection, source_events: int, index_rows: int) -> None:
    """source_events events over the last 20 hours (severity 1-5 in turn, so 40% high-impact;
    1% with a blank region, counted as invalid) and index_rows risk rows within spike_max_age:
    60% risk_indices (10 readings per region), 40% asset_risk (4 assets per region)."""
    conn.execute(
        "INSERT INTO events (title, region, category, severity_score, inserted_at)"
        " SELECT 'Event ' || g, CASE WHEN g %% 100 = 0 THEN ' ' ELSE 'Region ' || (g %% 50) END,"
        "        'supply', 1 + g %% 5, now() - make_interval(secs => (g %% 72000))"
        "   FROM generate_series(1, %s) g",
        [source_events])
    index_rows_ri = index_rows * 6 // 10
    ri_regions = max(1, index_rows_ri // 10)
    conn.execute(
        "INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)"
        " SELECT 'Region ' || r, 7, 40 + (r * 7 + k * 13) %% 60, 'up', now() - make_interval(hours => 4 * k)"
        "   FROM generate_series(1, %s) r, generate_series(0, %s) k",
        [ri_regions, max(0, index_rows_ri // ri_regions - 1)])
    index_rows_ar = index_rows - index_rows_ri
    ar_regions = max(1, index_rows_ar // (4 * 4))
    conn.execute(
        "INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)"
        " SELECT a, 'Region ' || r, 7, 50 + (r * 11 + k * 5 + length(a)) %% 50, 'up',"
        "        now() - make_interval(hours => 6 * k)"
        "   FROM unnest(%s::text[]) a, generate_series(1, %s) r, generate_series(0, %s) k",
        [ASSETS, ar_regions, max(0, index_rows_ar // (4 * ar_regions) - 1)])
