"""Small builders for host rows, so each test states only what it cares about."""

import json
from collections.abc import Sequence

import psycopg

ALL_TYPES = ["HIGH_IMPACT_EVENT", "REGIONAL_RISK_SPIKE", "ASSET_RISK_SPIKE"]


def plan(conn: psycopg.Connection, code: str, *, types: Sequence[str] = ALL_TYPES,
         max_email: int | None = None, delivery_config: dict | None = None) -> str:
    conn.execute(
        "INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config) "
        "VALUES (%s, %s, %s, %s)",
        [code, list(types), max_email, json.dumps(delivery_config or {})],
    )
    return code


def user(conn: psycopg.Connection, *, plan_code: str | None = "pro", email: str | None = "user@example.com",
         email_verified: bool | None = True, telegram_chat_id: str | None = None,
         phone_number: str | None = None) -> int:
    row = conn.execute(
        "INSERT INTO users (email, email_verified, telegram_chat_id, phone_number) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        [email, email_verified, telegram_chat_id, phone_number],
    ).fetchone()
    assert row is not None
    if plan_code is not None:
        conn.execute("INSERT INTO user_plans (user_id, plan) VALUES (%s, %s)", [row[0], plan_code])
    return int(row[0])


def pref(conn: psycopg.Connection, user_id: int, alert_type: str = "HIGH_IMPACT_EVENT", *,
         region: str = "global", asset: str | None = None, threshold: int | None = None,
         enabled: bool = True, delivery_mode: str | None = None) -> None:
    conn.execute(
        "INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold, enabled, delivery_mode) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [user_id, alert_type, region, asset, threshold, enabled, delivery_mode],
    )


def event(conn: psycopg.Connection, *, title: str = "Pipeline explosion", region: str | None = "Europe",
          severity: int | None = 5, age: str = "1 hour", category: str = "supply") -> int:
    row = conn.execute(
        "INSERT INTO events (title, region, category, severity_score, inserted_at) "
        "VALUES (%s, %s, %s, %s, now() - %s::interval) RETURNING id",
        [title, region, category, severity, age],
    ).fetchone()
    assert row is not None
    return int(row[0])


def risk_index(conn: psycopg.Connection, region: str, score: float, *, age: str = "1 hour",
               window_days: int = 7) -> None:
    conn.execute(
        "INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at) "
        "VALUES (%s, %s, %s, 'up', now() - %s::interval)",
        [region, window_days, score, age],
    )


def asset_risk(conn: psycopg.Connection, region: str, asset: str, score: float, *, age: str = "1 hour",
               window_days: int = 7) -> None:
    conn.execute(
        "INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at) "
        "VALUES (%s, %s, %s, %s, 'up', now() - %s::interval)",
        [asset, region, window_days, score, age],
    )


def population(conn: psycopg.Connection, users: int, events: int, *, channels: Sequence[str] = ("email",)) -> None:
    """users subscribers of HIGH_IMPACT_EVENT on plan 'pro' and events high-impact events, set-based."""
    config = {c: {"enabled": c in channels} for c in ("email", "telegram", "sms")}
    plan(conn, "pro", delivery_config=config)
    conn.execute(
        "WITH new_users AS ("
        "  INSERT INTO users (email, email_verified, telegram_chat_id, phone_number)"
        "  SELECT 'u' || g || '@example.com', true, (100000 + g)::text, '+1555' || lpad(g::text, 7, '0')"
        "    FROM generate_series(1, %s) g RETURNING id),"
        " plans AS (INSERT INTO user_plans (user_id, plan) SELECT id, 'pro' FROM new_users)"
        " INSERT INTO user_alert_prefs (user_id, alert_type, region) SELECT id, 'HIGH_IMPACT_EVENT', 'global'"
        "   FROM new_users",
        [users],
    )
    conn.execute(
        "INSERT INTO events (title, region, category, severity_score, inserted_at)"
        " SELECT 'Event ' || g, 'Europe', 'supply', 5, now() - interval '1 hour' FROM generate_series(1, %s) g",
        [events],
    )
