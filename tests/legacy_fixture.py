"""The pre-v2 database of tests/legacy/: loading it, and snapshots of schema and rows to
compare before and after an upgrade."""

from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

LEGACY_DIR = Path(__file__).resolve().parent / "legacy"
ENGINE_TABLES = ("alert_events", "user_alert_deliveries")
HOST_TABLES = ("users", "user_plans", "plan_settings", "user_alert_prefs", "events", "risk_indices", "asset_risk")

Rows = dict[str, list[dict[str, Any]]]


def load_legacy(url: str) -> None:
    """Create the pre-v2 schema and its data in an empty database."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("legacy_schema.sql", "legacy_data.sql"):
            conn.execute((LEGACY_DIR / name).read_text(encoding="utf-8").encode("utf-8"))


def public_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def table_rows(conn: psycopg.Connection, table: str) -> list[dict[str, Any]]:
    """Every row of table as a dict, in a stable order (by id when it has one, else by every column)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f'SELECT * FROM "{table}" LIMIT 0')
        columns = [column.name for column in cursor.description or []]
        order = "id" if "id" in columns else ", ".join(str(n) for n in range(1, len(columns) + 1))
        return cursor.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()


def snapshot_rows(url: str, tables: tuple[str, ...] | None = None) -> Rows:
    """Every row of the given tables (default: every table in schema public)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {table: table_rows(conn, table) for table in (tables or tuple(public_tables(conn)))}


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def relfilenodes(url: str, tables: tuple[str, ...] = ENGINE_TABLES) -> dict[str, int]:
    """Where each table's data lives on disk: a rewrite gives the table a new file."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {table: conn.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass",
                                    [table]).fetchone()[0] for table in tables}
