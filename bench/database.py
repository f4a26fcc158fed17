"""The bench's own database: created on DATABASE_URL's server, deployed with the runner's
migrator, dropped at the end whatever happens (error, Ctrl-C, SIGTERM)."""

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from alerts import migrate


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database name."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """Yield the URL of a fresh, deployed database bench_<random>; drop it afterwards."""
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(admin_url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.deploy(conn)
        yield url
    finally:
        drop_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection for the bench's own statements: JIT off, as in the engine's
    functions (SET jit = off), so the baselines pay no JIT start-up the engine does not."""
    conn = psycopg.connect(url, autocommit=True, application_name="alerts_bench")
    conn.execute("SET jit = off")
    return conn


def scalar(conn: psycopg.Connection, query: str, params: list | None = None) -> object:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def timed(conn: psycopg.Connection, query: str, params: list | None = None) -> tuple[float, object]:
    """Seconds one statement took from this client (round trip included), and its first value
    (for a statement that returns no rows: the number of rows it changed)."""
    started = time.perf_counter()
    cur = conn.execute(query.encode(), params)
    if cur.description is None:
        value: object = cur.rowcount
    else:
        row = cur.fetchone()
        value = row[0] if row else None
    return time.perf_counter() - started, value


def reset_tables(conn: psycopg.Connection) -> None:
    """Empty every table of the schema but alerts_config: the same starting state for each case."""
    tables = conn.execute(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname = 'public' AND tablename <> 'alerts_config'").fetchall()
    if tables:
        conn.execute(f"TRUNCATE {', '.join(t[0] for t in tables)} RESTART IDENTITY CASCADE".encode())
    settle(conn, analyze=True)


def settle(conn: psycopg.Connection, *, analyze: bool) -> None:
    """Before a timed step: CHECKPOINT, so the step does not pay for the previous step's dirty
    buffers; with analyze, VACUUM (ANALYZE) first, as autovacuum would have done in a real
    deployment. analyze=False leaves the tables exactly as a bulk load left them (as-is); either
    way this connection's table counters are flushed, as another loader's would be by the time a
    cron job starts."""
    if analyze:
        conn.execute("VACUUM (ANALYZE)")
    conn.execute("SELECT pg_stat_force_next_flush()")  # the load's counters visible, as seconds later
    conn.execute("CHECKPOINT")


def stats_state(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    """Rows inserted, updated or deleted in each table since its last ANALYZE (the staleness
    the planner works with in the as-is variants)."""
    rows = conn.execute("SELECT relname, n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                        [tables]).fetchall()
    return {name: int(changed) for name, changed in rows}
