"""A database as a running energyriskiq-ops installation has it before Alerts v2
(tests/original/: its schema history and rows written as its code writes them), and the
statements its code still runs against the alert tables, written in SQL from its routes
and workers, to run before and after an upgrade."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ORIGINAL_DIR = Path(__file__).resolve().parent / "original"
# Rows of host kinds: the pro worker's index digests and GERI rows (no alert event).
HOST_KIND_DELIVERIES = (19, 20, 21, 22)


def load_original(url: str) -> None:
    """Create the original's schema and rows in an empty database."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("original_schema.sql", "original_data.sql"):
            conn.execute((ORIGINAL_DIR / name).read_text(encoding="utf-8").encode("utf-8"))


def column_types(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(table, column) -> (data type, udt, nullable) of every column in schema public."""
    rows = conn.execute("SELECT table_name, column_name, data_type, udt_name, is_nullable "
                        "FROM information_schema.columns WHERE table_schema = 'public'").fetchall()
    return {(table, column): (kind, udt, nullable) for table, column, kind, udt, nullable in rows}


def _utcnow_naive() -> datetime:
    """What the original passes for datetime.utcnow(): a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


# The original's reads of the alert tables (its account, delivery history, dashboard, admin,
# ops and engine-health endpoints, its workers' checks), each with parameters as it passes them
# (its INTERVAL '%s hours', filled in client-side, written as %s * INTERVAL '1 hour').
def original_reads() -> dict[str, tuple[str, tuple[Any, ...]]]:
    since = datetime.now(UTC) - timedelta(hours=72)
    return {
        "account alerts with metadata": ("""
            SELECT d.id, ae.alert_type, ae.scope_region AS region, ae.scope_assets, ae.severity,
                   ae.headline AS title, ae.body AS message, d.channel, d.status, d.created_at, d.sent_at,
                   d.last_error AS error, ae.raw_input, ae.classification, ae.category, ae.confidence
              FROM user_alert_deliveries d JOIN alert_events ae ON ae.id = d.alert_event_id
             WHERE d.user_id = %s ORDER BY d.created_at DESC, d.id LIMIT %s""", (4, 50)),
        "alert events list": ("""
            SELECT id, alert_type, scope_region, scope_assets, severity, headline, body, driver_event_ids,
                   created_at, raw_input, classification, category, confidence
              FROM alert_events WHERE alert_type = %s ORDER BY created_at DESC, id LIMIT %s""",
                              ("HIGH_IMPACT_EVENT", 50)),
        "delivery history by channel and status": ("""
            SELECT d.id, d.alert_event_id, d.channel, d.status, d.delivery_kind, d.last_error,
                   d.provider_message_id, d.created_at, d.sent_at,
                   ae.alert_type, ae.scope_region, ae.headline, ae.severity
              FROM user_alert_deliveries d JOIN alert_events ae ON ae.id = d.alert_event_id
             WHERE d.user_id = %s AND d.channel = %s AND d.status = %s
             ORDER BY d.created_at DESC, d.id LIMIT %s""", (3, "email", "failed", 50)),
        "user alerts page": ("""
            SELECT d.id, d.alert_event_id, d.channel, d.status, d.created_at, d.sent_at,
                   ae.alert_type, ae.scope_region, ae.headline, ae.body, ae.severity,
                   ae.raw_input, ae.classification, ae.category, ae.confidence
              FROM user_alert_deliveries d JOIN alert_events ae ON ae.id = d.alert_event_id
             WHERE d.user_id = %s ORDER BY d.created_at DESC, d.id LIMIT %s""", (1, 100)),
        "dashboard delivered alerts": ("""
            SELECT ae.id, ae.alert_type, ae.scope_region AS region, ae.scope_assets AS assets,
                   ae.severity, ae.headline AS title, ae.body AS message,
                   uad.channel, uad.status, ae.created_at, uad.sent_at
              FROM user_alert_deliveries uad JOIN alert_events ae ON uad.alert_event_id = ae.id
             WHERE uad.user_id = %s AND ae.alert_type = ANY(%s) AND uad.status IN ('sent', 'skipped')
             ORDER BY ae.created_at DESC, uad.id LIMIT 100""",
                                       (4, ["HIGH_IMPACT_EVENT", "REGIONAL_RISK_SPIKE", "DAILY_DIGEST"])),
        "dashboard recent alerts": ("""
            SELECT id, alert_type, scope_region AS region, scope_assets AS assets, severity,
                   headline AS title, body AS message, created_at
              FROM alert_events WHERE alert_type = ANY(%s) AND created_at > NOW() - INTERVAL '7 days'
             ORDER BY created_at DESC, id LIMIT %s""", (["HIGH_IMPACT_EVENT", "ASSET_RISK_SPIKE"], 20)),
        "locked samples": ("""
            SELECT DISTINCT ON (ae.alert_type) ae.id, ae.alert_type, ae.scope_region AS region,
                   ae.scope_assets AS assets, ae.headline AS title, ae.body AS message, ae.created_at
              FROM alert_events ae WHERE ae.alert_type = ANY(%s) AND ae.created_at >= NOW() - INTERVAL '30 days'
             ORDER BY ae.alert_type, ae.created_at DESC""", (["ASSET_RISK_SPIKE", "DAILY_DIGEST"],)),
        "ops: last alert sent": ("""
            SELECT MAX(uad.sent_at) AS last_sent, COUNT(*) FILTER (WHERE uad.status = 'sent') AS total_sent
              FROM user_alert_deliveries uad JOIN alert_events ae ON ae.id = uad.alert_event_id
             WHERE ae.alert_type != 'DAILY_DIGEST'""", ()),
        "ops: last digest sent": ("""
            SELECT MAX(uad.sent_at) AS last_sent, COUNT(*) AS total
              FROM user_alert_deliveries uad JOIN alert_events ae ON ae.id = uad.alert_event_id
             WHERE ae.alert_type = 'DAILY_DIGEST' AND uad.status = 'sent'""", ()),
        "engine health: deliveries by channel, status, kind": ("""
            SELECT channel, status, delivery_kind, COUNT(*) AS count
              FROM user_alert_deliveries WHERE created_at >= NOW() - %s * INTERVAL '1 hour'
             GROUP BY channel, status, delivery_kind ORDER BY channel, status, delivery_kind""", (100,)),
        # Its age in minutes, NOW() - MIN(created_at), changes while the test runs: the
        # oldest queued row's time, and the type that subtraction works on, do not.
        "engine health: oldest queued": ("""
            SELECT MIN(created_at) AS oldest_queued, pg_typeof(NOW() - MIN(created_at))::text AS age_type
              FROM user_alert_deliveries WHERE status = 'queued'""", ()),
        "digest health": ("""
            SELECT channel, status, COUNT(*) AS count FROM user_alert_digests
             WHERE created_at >= NOW() - %s * INTERVAL '1 day' GROUP BY channel, status ORDER BY channel, status""",
                          (7,)),
        "alert history export": ("""
            SELECT created_at, alert_type, category, scope_region, severity, headline, body
              FROM alert_events WHERE alert_type != 'DAILY_DIGEST' ORDER BY created_at DESC, id LIMIT %s""",
                                 (5000,)),
        "trader worker: alerts not yet sent by telegram": ("""
            SELECT ae.id, ae.alert_type, ae.headline, ae.body, ae.severity, ae.scope_region AS region,
                   ae.confidence AS risk_score, ae.created_at
              FROM alert_events ae
             WHERE ae.created_at >= %s AND ae.scope_region = ANY(%s)
               AND NOT EXISTS (SELECT 1 FROM user_alert_deliveries uad
                                WHERE uad.alert_event_id = ae.id AND uad.user_id = %s AND uad.channel = 'telegram')
             ORDER BY ae.created_at DESC, ae.id""", (since, ["Europe", "Middle East"], 3)),
        "pro worker: delivered today": ("""
            SELECT 1 FROM user_alert_deliveries
             WHERE user_id = %s AND channel = %s AND geri_date = %s
               AND delivery_kind IN ('index_digest', 'geri') AND status = 'sent' LIMIT 1""",
                                        (1, "telegram", (datetime.now(UTC) - timedelta(days=1)).date())),
        "retry candidates": ("""
            SELECT COUNT(*) AS count FROM user_alert_deliveries
             WHERE status = 'failed' AND created_at >= NOW() - %s * INTERVAL '1 hour' AND attempts < %s
               AND (last_error IS NULL OR NOT (last_error = ANY(%s)))""", (100, 5, ["email_disabled"])),
    }


def run_reads(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read's rows, as tuples of Python values."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: conn.execute(sql, params).fetchall() for name, (sql, params) in original_reads().items()}


def value_types(results: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[str, ...]]]:
    """The Python type of every value (a datetime's tzinfo included: naive stays naive)."""
    def kind(value: Any) -> str:
        if isinstance(value, datetime):
            return f"datetime(tz={value.tzinfo})"
        return type(value).__name__
    return {name: [tuple(kind(value) for value in row) for row in rows] for name, rows in results.items()}


# The original's writes that go on after the upgrade (its workers, batching, one-off fixes,
# ops actions), in order, each with parameters as it passes them.
def original_writes() -> list[tuple[str, tuple[Any, ...]]]:
    today = datetime.now(UTC).date()
    window = _utcnow_naive().replace(minute=0, second=0, microsecond=0)
    return [
        # pro worker: an index digest per user, channel and day, sent or failed, upserted
        ("""INSERT INTO user_alert_deliveries (user_id, channel, status, delivery_kind, created_at, sent_at,
                                               geri_date, last_error)
            VALUES (%s, %s, %s, %s, NOW(), NOW(), %s, %s)
            ON CONFLICT (user_id, channel, geri_date) WHERE delivery_kind = 'index_digest' AND geri_date IS NOT NULL
            DO UPDATE SET status = EXCLUDED.status, sent_at = NOW(), last_error = EXCLUDED.last_error""",
         (5, "email", "failed", "index_digest", today, "Brevo 500")),
        ("""INSERT INTO user_alert_deliveries (user_id, channel, status, delivery_kind, created_at, sent_at,
                                               geri_date, last_error)
            VALUES (%s, %s, %s, %s, NOW(), NOW(), %s, %s)
            ON CONFLICT (user_id, channel, geri_date) WHERE delivery_kind = 'index_digest' AND geri_date IS NOT NULL
            DO UPDATE SET status = EXCLUDED.status, sent_at = NOW(), last_error = EXCLUDED.last_error""",
         (5, "email", "sent", "index_digest", today, None)),
        ("""INSERT INTO user_alert_deliveries (user_id, channel, status, delivery_kind, created_at, sent_at,
                                               geri_date, last_error)
            VALUES (%s, %s, %s, %s, NOW(), NOW(), %s, %s)
            ON CONFLICT (user_id, channel, geri_date) WHERE delivery_kind = 'index_digest' AND geri_date IS NOT NULL
            DO UPDATE SET status = EXCLUDED.status, sent_at = NOW(), last_error = EXCLUDED.last_error""",
         (1, "telegram", "skipped", "index_digest", today, "no_preferences")),
        # trader worker: an alert it sent itself, recorded with sent_at = NOW() whatever the outcome
        ("""INSERT INTO user_alert_deliveries (user_id, alert_event_id, channel, status, provider_message_id,
                                               created_at, sent_at, delivery_kind, last_error, batch_window)
            VALUES (%s, %s, %s, %s, %s, NOW(), NOW(), 'instant', %s, %s)
            ON CONFLICT (alert_event_id, user_id, channel, delivery_kind)
            DO UPDATE SET status = %s, sent_at = NOW(), last_error = %s, batch_window = %s
            RETURNING id""", (6, 2, "telegram", "failed", None, "Forbidden: bot was blocked", window,
                              "failed", "Forbidden: bot was blocked", window)),
        ("""INSERT INTO user_alert_deliveries (user_id, alert_event_id, channel, status, provider_message_id,
                                               created_at, sent_at, delivery_kind, last_error, batch_window)
            VALUES (%s, %s, %s, %s, %s, NOW(), NOW(), 'instant', %s, %s)
            ON CONFLICT (alert_event_id, user_id, channel, delivery_kind)
            DO UPDATE SET status = %s, sent_at = NOW(), last_error = %s, batch_window = %s
            RETURNING id""", (6, 2, "telegram", "sent", "tg-99", None, window, "sent", None, window)),
        ("""INSERT INTO user_alert_deliveries (user_id, alert_event_id, channel, status, provider_message_id,
                                               created_at, sent_at, delivery_kind, last_error, batch_window)
            VALUES (%s, %s, %s, %s, %s, NOW(), NOW(), 'instant', %s, %s)
            ON CONFLICT (alert_event_id, user_id, channel, delivery_kind)
            DO UPDATE SET status = %s, sent_at = NOW(), last_error = %s, batch_window = %s
            RETURNING id""", (6, 3, "email", "skipped", None, "email_disabled", window,
                              "skipped", "email_disabled", window)),
        # digest batching: a digest, its item, the delivery marked batched
        ("""INSERT INTO user_alert_digests (user_id, channel, period, window_start, window_end, digest_key, status)
            VALUES (%s, %s, %s, %s, %s, %s, 'queued') ON CONFLICT (digest_key) DO NOTHING RETURNING id""",
         (4, "email", "daily", window - timedelta(days=1), window, f"digest:4:email:daily:{today}")),
        ("""INSERT INTO user_alert_digest_items (digest_id, delivery_id)
            SELECT id, 18 FROM user_alert_digests WHERE digest_key = %s
            ON CONFLICT (digest_id, delivery_id) DO NOTHING""", (f"digest:4:email:daily:{today}",)),
        # one-off fix: failures of a disabled email sender become skips
        ("""UPDATE user_alert_deliveries SET status = 'skipped', last_error = 'email_disabled'
             WHERE status = 'failed' AND last_error LIKE '%%Email sending is disabled%%'""", ()),
        # ops: the digest worker's daily digest event, upserted on its cooldown key
        ("""INSERT INTO alert_events (alert_type, scope_region, scope_assets, severity, headline, body,
                                      driver_event_ids, cooldown_key, event_fingerprint, raw_input, classification,
                                      category, confidence)
            VALUES ('DAILY_DIGEST', %s, '{}', 2, %s, %s, NULL, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (cooldown_key) DO UPDATE SET
                raw_input = COALESCE(alert_events.raw_input, EXCLUDED.raw_input),
                classification = COALESCE(alert_events.classification, EXCLUDED.classification),
                category = COALESCE(alert_events.category, EXCLUDED.category),
                confidence = COALESCE(alert_events.confidence, EXCLUDED.confidence)
            RETURNING id""", ("Middle East", "Daily digest: Middle East", "One alert today.",
                              f"DIGEST:Middle East:{today}", f"DAILY_DIGEST:Middle East:{today}",
                              '{"alerts": 1}', '{"summary_type": "daily"}', "digest", 0.9)),
    ]


# The original's startup migrations for the alert tables, run again at every application
# start: they must leave an upgraded database working.
ORIGINAL_STARTUP_DDL = (
    "ALTER TABLE alert_events ALTER COLUMN event_fingerprint SET NOT NULL",
    "UPDATE alert_events SET event_fingerprint = cooldown_key WHERE event_fingerprint IS NULL",
    "CREATE INDEX IF NOT EXISTS idx_alert_events_fanout_completed ON alert_events(fanout_completed_at)",
    "ALTER TABLE user_alert_deliveries DROP CONSTRAINT IF EXISTS user_alert_deliveries_status_check",
    "ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_status_check "
    "CHECK (status IN ('queued','sending','sent','failed','skipped'))",
    "DROP INDEX IF EXISTS uq_user_alert_deliveries_unique",
    "CREATE INDEX IF NOT EXISTS idx_user_alert_deliveries_retry ON user_alert_deliveries(next_retry_at) "
    "WHERE next_retry_at IS NOT NULL",
    "ALTER TABLE user_alert_deliveries ADD COLUMN IF NOT EXISTS batch_window TIMESTAMP",
    "ALTER TABLE user_alert_deliveries ADD COLUMN IF NOT EXISTS geri_date DATE",
    "ALTER TABLE user_alert_deliveries ALTER COLUMN alert_event_id DROP NOT NULL",
)
