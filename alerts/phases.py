"""Runs the phases: A, B and D are one stored-function call each; C (alerts.delivery) claims,
sends and records under the runner's lock."""

import logging
import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from alerts.db import connect, one_line
from alerts.delivery import Database, RunGuard, count_due, deliver
from alerts.locks import PHASE_LOCK_NAMES, lock_key, skip_object
from alerts.send_slots import DatabaseSlots
from alerts.senders.base import Sender
from alerts.shutdown import STOP

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
                              "would_send": min(max_send, count_due(Database(url, conn), max_send))}
                yield {**counts, "dry_run": True}
        finally:
            conn.rollback()


@contextmanager
def phase_c_lock(url: str) -> Iterator[psycopg.Connection | None]:
    """Hold alerts_v2_phase_c in shared mode for the block: a transaction-scoped lock on a
    connection of its own (safe behind a transaction pooler, which keeps the connection for the
    open transaction), so the claims and outcomes commit on another connection meanwhile.

    Shared, because senders need not exclude each other (SKIP LOCKED keeps their claims
    disjoint, claim tokens keep their outcomes apart): any number of runs on any number of
    hosts send at once, and a frozen or vanished sender holds up nothing but its own claimed
    rows until their lease ends. Only an exclusive holder (a DBA's pause switch,
    `SELECT pg_advisory_lock(alerts_lock_key('alerts_v2_phase_c'))`) makes a run skip. Yields
    the lock's connection, or None when the lock is held exclusively or requested so."""
    with connect(url, autocommit=False) as lock_conn:
        lock_conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        # The key is inlined, not a bind parameter: a parameterised query leaves its portal, and
        # with it a snapshot, open until the transaction ends, which would hold back vacuum on
        # the whole server for the entire run.
        row = lock_conn.execute(sql.SQL("SELECT pg_try_advisory_xact_lock_shared({})").format(
            sql.Literal(lock_key(PHASE_LOCK_NAMES["c"])))).fetchone()
        try:
            yield lock_conn if row and row[0] else None
        finally:
            if not lock_conn.closed:
                try:
                    lock_conn.rollback()
                except psycopg.OperationalError as error:  # the session is gone, and the lock with it
                    log.debug("phase C lock connection already closed: %s", one_line(error))


def lock_alive(lock_conn: psycopg.Connection) -> Callable[[], bool]:
    """A check that the session holding the lock is still there: one round trip, no snapshot kept."""
    def alive() -> bool:
        try:
            lock_conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False
    return alive


def lock_socket_readable(lock_conn: psycopg.Connection) -> Callable[[], bool]:
    """Whether the lock's idle session has sent anything: it only does when it is ending."""
    def readable() -> bool:
        if lock_conn.closed:
            return True
        ready, _, _ = select.select([lock_conn.fileno()], [], [], 0)
        return bool(ready)
    return readable


def run_phase_c(url: str, sender: Sender, batch_size: int, max_send: int) -> dict[str, object]:
    """Claim and send batch after batch until nothing is due, max_send rows were claimed, the run
    is asked to stop, or it lost its lock. Reclaiming digests is kept apart from deliveries: a
    failure there is reported and never stops the deliveries. Paced channels take their start
    times from send slots shared with every other sender process (alerts.send_slots), on a
    connection of their own opened only when such a channel sends."""
    with phase_c_lock(url) as lock_conn:
        if lock_conn is None:
            return skip_object("c")
        db = Database(url)
        slots = DatabaseSlots(url)
        sender.share_send_slots(slots)
        try:
            reclaimed = {"deliveries": db.value("SELECT reclaim_expired_deliveries()"),
                         "digests": _reclaim_digests(db)}
            guard = RunGuard(lock_alive(lock_conn), STOP, lock_socket_readable(lock_conn))
            counts = deliver(db, sender, batch_size, max_send, guard=guard)
        finally:
            sender.share_send_slots(None)
            slots.close()
            db.close()
    return {"phase": "c", "locked": True, "skipped": False, "reclaimed": reclaimed, **counts.__dict__}


def _reclaim_digests(db: Database) -> object:
    try:
        return db.value("SELECT reclaim_expired_digests()")
    except psycopg.OperationalError:
        raise
    except psycopg.Error as error:
        log.error("reclaiming expired digests failed (the deliveries go on): %s", one_line(error))
        return {"error": one_line(error)}
