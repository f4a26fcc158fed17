"""Runs the phases: A and B are one stored-function call each; C claims, sends and records."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row, tuple_row

from alerts.db import connect, one_line
from alerts.destinations import destination_problem
from alerts.locks import PHASE_LOCK_NAMES, lock_key, skip_object
from alerts.render import render
from alerts.secrets import mask_text
from alerts.senders.base import Outcome, Sender, SendResult
from alerts.senders.channels import CHANNELS, ChannelNotConfigured, ChannelUnavailable

log = logging.getLogger("alerts")

_PHASE_FUNCTIONS = {"a": "alerts_phase_a", "b": "alerts_phase_b"}


def run_sql_phase(conn: psycopg.Connection, phase: str) -> dict[str, object]:
    """Call alerts_phase_a() or alerts_phase_b(); the function takes its own lock."""
    row = conn.execute(f"SELECT {_PHASE_FUNCTIONS[phase]}()").fetchone()
    assert row is not None
    counts: dict[str, object] = row[0]
    return counts


def count_due(conn: psycopg.Connection, up_to: int | None, channels: list[str] | None = None) -> int:
    return _scalar(conn, "SELECT count_due_deliveries(%s, %s)", [up_to, channels])


def dry_run_all(url: str, phases: list[str], max_send: int) -> Iterator[dict[str, object]]:
    """Run A and B in one transaction that is rolled back; C only counts what it would send."""
    with connect(url, autocommit=False) as conn:
        try:
            for phase in phases:
                if phase in _PHASE_FUNCTIONS:
                    counts = run_sql_phase(conn, phase)
                else:
                    counts = {"phase": "c", "locked": True, "skipped": False,
                              "would_send": count_due(conn, max_send)}
                yield {**counts, "dry_run": True}
        finally:
            conn.rollback()


@contextmanager
def phase_c_lock(url: str) -> Iterator[bool]:
    """Hold alerts_v2_phase_c for the block: a transaction-scoped lock on a connection
    of its own, so the claims and outcomes commit on another connection meanwhile."""
    with connect(url, autocommit=False) as lock_conn:
        lock_conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        row = lock_conn.execute("SELECT pg_try_advisory_xact_lock(%s)",
                                [lock_key(PHASE_LOCK_NAMES["c"])]).fetchone()
        try:
            yield bool(row and row[0])
        finally:
            lock_conn.rollback()


@dataclass
class DeliveryCounts:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    requeued: int = 0
    deliveries_skipped: int = 0
    released: int = 0
    batches: int = 0
    stopped_early: bool = False
    errors_by_channel: dict[str, int] = field(default_factory=dict)
    channels_not_configured: dict[str, int] = field(default_factory=dict)
    channels_held: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchOutcomes:
    sent: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    requeued: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)


def run_phase_c(url: str, sender: Sender, batch_size: int, max_send: int) -> dict[str, object]:
    """Claim and send batch after batch until nothing is due or max_send rows were claimed."""
    with phase_c_lock(url) as locked:
        if not locked:
            return skip_object("c")
        with connect(url) as conn:
            reclaimed = conn.execute("SELECT reclaim_expired_deliveries()").fetchone()
            conn.row_factory = dict_row  # type: ignore[assignment]
            counts = deliver(conn, sender, batch_size, max_send)
    return {"phase": "c", "locked": True, "skipped": False, "reclaimed": reclaimed[0] if reclaimed else None,
            **counts.__dict__}


def deliver(conn: psycopg.Connection, sender: Sender, batch_size: int, max_send: int) -> DeliveryCounts:
    """Claim, send and record until nothing sendable is due or max_send rows were claimed.
    Only the channels the sender can serve now are claimed; the others stay queued."""
    counts = DeliveryCounts()
    channels = sendable_channels(sender)
    while counts.claimed < max_send and (channels is None or channels):
        rows = conn.execute("SELECT * FROM claim_deliveries(%s, %s)",
                            [min(batch_size, max_send - counts.claimed), channels]).fetchall()
        if not rows:
            break
        counts.claimed += len(rows)
        counts.batches += 1
        outcomes = BatchOutcomes(unsent=[int(r["delivery_id"]) for r in rows])
        try:
            send_batch(sender, rows, outcomes, counts)
        finally:
            record(conn, outcomes, counts)
        channels = sendable_channels(sender)
    counts.stopped_early = counts.claimed >= max_send and count_due(conn, 1, channels) > 0
    report_unserved_channels(conn, sender, counts)
    return counts


def sendable_channels(sender: Sender) -> list[str] | None:
    """The channels worth claiming now; None when the sender serves every channel."""
    available = getattr(sender, "available_channels", None)
    return sorted(available()) if available else None


def report_unserved_channels(conn: psycopg.Connection, sender: Sender, counts: DeliveryCounts) -> None:
    """Count what stays queued because its channel has no sender, or is held by its provider."""
    configured = getattr(sender, "configured_channels", None)
    if configured is None:
        return
    for channel in CHANNELS:
        due = count_due(conn, None, [channel])
        if due and channel not in configured():
            counts.channels_not_configured[channel] = due
            log.error("%s %s deliveries stay queued: %s", due, channel, ChannelNotConfigured(channel))
        elif due and channel not in (sendable_channels(sender) or CHANNELS):
            counts.channels_held[channel] = due


def send_batch(sender: Sender, rows: list[dict], outcomes: BatchOutcomes, counts: DeliveryCounts) -> None:
    """Send each row; a row leaves outcomes.unsent only once its result is known.
    A row whose channel cannot be served now stays unsent and is released untouched."""
    for row in rows:
        delivery_id = int(row["delivery_id"])
        problem = destination_problem(row["channel"], row["destination"])
        if problem:
            outcomes.skipped.append((delivery_id, problem))
        else:
            try:
                result = sender.send(render(row))
            except ChannelUnavailable:
                continue
            except Exception as error:  # a sender bug must not lose the batch
                result = SendResult.transient(f"{type(error).__name__}: {one_line(error)}")
            _file_result(outcomes, delivery_id, result, row["channel"], counts)
        outcomes.unsent.remove(delivery_id)
    try:
        sender.flush()
    except Exception as error:
        log.error("sender %s could not make the batch durable: %s", sender.name, one_line(error))
        outcomes.requeued.extend((i, f"flush failed: {one_line(error)}") for i, _ in outcomes.sent)
        outcomes.sent.clear()


def _file_result(outcomes: BatchOutcomes, delivery_id: int, result: SendResult, channel: str,
                 counts: DeliveryCounts) -> None:
    if result.outcome is Outcome.SENT:
        outcomes.sent.append((delivery_id, result.provider_message_id or ""))
        return
    error = mask_text(result.error or "no reason given")
    counts.errors_by_channel[channel] = counts.errors_by_channel.get(channel, 0) + 1
    if result.outcome is Outcome.PERMANENT:
        outcomes.failed.append((delivery_id, error))
    else:
        outcomes.requeued.append((delivery_id, error))


def record(conn: psycopg.Connection, outcomes: BatchOutcomes, counts: DeliveryCounts) -> None:
    """Write the batch's outcomes; each function changes only rows still 'sending'."""
    calls = (
        ("mark_deliveries_sent", outcomes.sent, "sent"),
        ("mark_deliveries_failed", outcomes.failed, "failed"),
        ("requeue_deliveries", outcomes.requeued, "requeued"),
        ("mark_deliveries_skipped", outcomes.skipped, "deliveries_skipped"),
    )
    for function, pairs, counter in calls:
        if pairs:
            ids, details = zip(*pairs, strict=True)
            changed = _scalar(conn, f"SELECT {function}(%s, %s)", [list(ids), list(details)])
            setattr(counts, counter, getattr(counts, counter) + changed)
    if outcomes.unsent:
        counts.released += _scalar(conn, "SELECT release_deliveries(%s)", [outcomes.unsent])


def _scalar(conn: psycopg.Connection, sql: str, params: list) -> int:
    row = conn.cursor(row_factory=tuple_row).execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])
