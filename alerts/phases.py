"""Runs the phases: A, B and D are one stored-function call each; C (alerts.delivery) claims,
sends and records under the runner's lock."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from alerts.db import connect
from alerts.delivery import count_due, deliver
from alerts.locks import PHASE_LOCK_NAMES, lock_key, skip_object
from alerts.senders.base import Sender

log = logging.getLogger("alerts")

_PHASE_FUNCTIONS = {"a": "alerts_phase_a", "b": "alerts_phase_b", "d": "alerts_phase_d"}


def run_sql_phase(conn: psycopg.Connection, phase: str) -> dict[str, object]:
    """Call alerts_phase_a(), _b() or _d(); the function takes its own lock."""
    row = conn.execute(f"SELECT {_PHASE_FUNCTIONS[phase]}()").fetchone()
    assert row is not None
    counts: dict[str, object] = row[0]
    return counts


def dry_run_all(url: str, phases: list[str], max_send: int) -> Iterator[dict[str, object]]:
    """Run A, B and D in one transaction that is rolled back; C only counts what it would send."""
    with connect(url, autocommit=False) as conn:
        try:
            for phase in phases:
                if phase in _PHASE_FUNCTIONS:
                    counts = run_sql_phase(conn, phase)
                else:
                    counts = {"phase": "c", "locked": True, "skipped": False,
                              "would_send": min(max_send, count_due(conn, max_send))}
                yield {**counts, "dry_run": True}
        finally:
            conn.rollback()


@contextmanager
def phase_c_lock(url: str) -> Iterator[bool]:
    """Hold alerts_v2_phase_c for the block: a transaction-scoped lock on a connection
    of its own, so the claims and outcomes commit on another connection meanwhile."""
    with connect(url, autocommit=False) as lock_conn:
        lock_conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        # The key is inlined, not a bind parameter: a parameterised query leaves its portal, and
        # with it a snapshot, open until the transaction ends, which would hold back vacuum on
        # the whole server for the entire run.
        row = lock_conn.execute(sql.SQL("SELECT pg_try_advisory_xact_lock({})").format(
            sql.Literal(lock_key(PHASE_LOCK_NAMES["c"])))).fetchone()
        try:
            yield bool(row and row[0])
        finally:
            lock_conn.rollback()


def run_phase_c(url: str, sender: Sender, batch_size: int, max_send: int) -> dict[str, object]:
    """Claim and send batch after batch until nothing is due or max_send rows were claimed."""
    with phase_c_lock(url) as locked:
        if not locked:
            return skip_object("c")
        with connect(url) as conn:
            reclaimed = conn.execute("SELECT reclaim_expired_deliveries(), reclaim_expired_digests()").fetchone()
            conn.row_factory = dict_row  # type: ignore[assignment]
            counts = deliver(conn, sender, batch_size, max_send)
    assert reclaimed is not None
    return {"phase": "c", "locked": True, "skipped": False,
            "reclaimed": {"deliveries": reclaimed[0], "digests": reclaimed[1]}, **counts.__dict__}
