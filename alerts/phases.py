"""Runs the phases: A, B and D are one stored-function call each; C (alerts.delivery) claims,
sends and records under the runner's lock."""

import logging
from collections.abc import Callable, Iterator

import psycopg

from alerts.counts import while_more
from alerts.db import connect, one_line
from alerts.delivery import Database, RunGuard, count_due, deliver
from alerts.failures import retry_transient
from alerts.fanout import fan_out
from alerts.locks import SENDING_OPEN, skip_object
from alerts.send_slots import DatabaseSlots
from alerts.senders.base import Sender
from alerts.shutdown import STOP

log = logging.getLogger("alerts")

DRY_RUN_IDLE_SECONDS = 60
_PHASE_FUNCTIONS = {"a": "alerts_phase_a", "b": "alerts_phase_b", "d": "alerts_phase_d"}


def run_sql_phase(conn: psycopg.Connection, phase: str) -> dict[str, object]:
    """Call alerts_phase_a() or _d(), or Phase B's bounded steps until nothing is left to fan out;
    each function takes its own lock, and a call that hits a deadlock or a serialization failure
    is tried again (alerts.failures.retry_transient)."""
    if phase == "b":
        return fan_out(conn)
    call = f"SELECT {_PHASE_FUNCTIONS[phase]}()"

    def once() -> dict[str, object]:
        row = retry_transient(conn, f"phase {phase}", lambda: conn.execute(call).fetchone())
        assert row is not None
        counts: dict[str, object] = row[0]
        return counts
    return while_more(once)  # Phase D gathers a bounded batch a call and says whether more may wait


def dry_run_all(url: str, phases: list[str], max_send: int) -> Iterator[dict[str, object]]:
    """Run A, B and D in one transaction that is rolled back; C only counts what it would send.
    The one transaction the runner keeps open across statements (A, B and D otherwise run in
    autocommit, so a runner frozen after a call holds no lock): a dry run frozen between two of
    them is ended by the server after DRY_RUN_IDLE_SECONDS, and its phase locks with it."""
    with connect(url, autocommit=False) as conn:
        conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{DRY_RUN_IDLE_SECONDS}s'")
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




def sending_open(db: Database) -> Callable[[], bool]:
    """Whether Phase C's lock can be had in shared mode now: false while a DBA holds it exclusively
    (the pause switch) or waits for it. One round trip; the lock ends with its statement's
    transaction, so no connection is pinned (behind a transaction pooler neither)."""
    def is_open() -> bool:
        return bool(db.value(f"SELECT {SENDING_OPEN}"))
    return is_open


def run_phase_c(url: str, sender: Sender, batch_size: int, max_send: int) -> dict[str, object]:
    """Claim and send batch after batch until nothing is due, max_send rows were claimed, the run
    is asked to stop, or sending is paused.

    Phase C's lock, alerts_v2_phase_c, is taken in shared mode: at the start of the run (a run
    that cannot have it skips) and in the transaction of every claim (alerts.delivery), so
    senders need not exclude each other (SKIP LOCKED keeps their claims disjoint, claim tokens
    keep their outcomes apart): any number of runs on any number of hosts send at once, and a
    frozen or vanished sender holds up nothing but its own claimed rows until their lease ends.
    No lock is held between statements, so no connection is pinned for the run. An exclusive
    holder (a DBA's pause switch, `SELECT pg_advisory_lock(alerts_lock_key('alerts_v2_phase_c'))`)
    makes new runs skip and running ones stop claiming: they record what they sent, release the
    rest and end ("paused": true). Reclaiming digests is kept apart from deliveries: a failure
    there is reported and never stops the deliveries. Paced channels take their start times from
    send slots shared with every other sender process (alerts.send_slots), on a connection of
    their own opened only when such a channel sends."""
    db = Database(url)
    slots = DatabaseSlots(url)
    try:
        if not sending_open(db)():
            return skip_object("c")
        sender.share_send_slots(slots)
        reclaimed = {"deliveries": _reclaim_deliveries(db), "digests": _reclaim_digests(db)}
        counts = deliver(db, sender, batch_size, max_send, guard=RunGuard(sending_open(db), STOP))
    finally:
        sender.share_send_slots(None)
        slots.close()
        db.close()
    return {"phase": "c", "locked": True, "skipped": False, "reclaimed": reclaimed, **counts.__dict__}


def _reclaim_deliveries(db: Database) -> dict[str, object]:
    """Expired claims back to the queue, a bounded batch per call (each its own transaction)."""
    return while_more(lambda: db.value("SELECT reclaim_expired_deliveries()"))  # type: ignore[arg-type,return-value]


def _reclaim_digests(db: Database) -> object:
    try:
        return while_more(lambda: db.value("SELECT reclaim_expired_digests()"))  # type: ignore[arg-type,return-value]
    except psycopg.OperationalError:
        raise
    except psycopg.Error as error:
        log.error("reclaiming expired digests failed (the deliveries go on): %s", one_line(error))
        return {"error": one_line(error)}
