"""Phase C: claim, send and record, for instant deliveries and for digests alike.

A Queue names the stored functions of one kind of sendable row; deliver() runs the same
claim -> send -> record loop over each: many messages in flight per channel through the real
providers (alerts.concurrent_delivery), one at a time, in batches, into the file outbox or the
console (this module), where a local write is faster than any thread could make it. Every
claimed row ends with exactly one recorded outcome; a row that was never handed to a provider
is released with its attempt.

A batch is claimed in one statement (DEFAULT_BATCH_SIZE rows: each claim walks the queue
index from its head, so fewer, larger claims cost less). Its outcomes are written when the
batch is done, and also whenever RECORD_INTERVAL_SECONDS have passed since they were last
written, so a runner that dies mid-batch has sent at most that long's messages (and never
more than one batch) without their outcome: the batch's lease sends those again. A fast
sender records once per batch; a slow one every second.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import tuple_row

from alerts.db import one_line
from alerts.destinations import destination_problem
from alerts.render import OutgoingMessage, render, render_digest
from alerts.secrets import mask_text
from alerts.senders.base import Outcome, Sender, SendResult
from alerts.senders.channels import CHANNELS, ChannelNotConfigured, ChannelUnavailable

log = logging.getLogger("alerts")

DEFAULT_BATCH_SIZE = 500
RECORD_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class Queue:
    """The SQL of one kind of sendable row; every call takes (ids, details) except release.

    The outcome calls pass their arrays as binary parameters (%b): psycopg dumps a list element by
    element, and in binary it does so in C, which matters at one call per batch of hundreds of rows."""

    id_column: str
    claim: str
    count_due: str
    render: Callable[[dict], OutgoingMessage]
    mark_sent: str
    mark_failed: str
    mark_skipped: str
    requeue: str
    release: str


DELIVERIES = Queue(
    id_column="delivery_id",
    # only the columns render() and send_batch() read: each column returned costs a conversion a row
    claim="SELECT delivery_id, user_id, channel, destination, attempts, alert_event_id, alert_type, severity,"
          " scope_region, scope_assets, headline, body FROM claim_deliveries(%s, %s)",
    count_due="SELECT count_due_deliveries(%s, %s)",
    render=render,
    mark_sent="SELECT mark_deliveries_sent(%b, %b)",
    mark_failed="SELECT mark_deliveries_failed(%b, %b)",
    mark_skipped="SELECT mark_deliveries_skipped(%b, %b)",
    requeue="SELECT requeue_deliveries(%b, %b)",
    release="SELECT release_deliveries(%b)",
)
DIGESTS = Queue(
    id_column="digest_id",
    claim="SELECT * FROM claim_digests(%s, %s)",
    count_due="SELECT count_due_digests(%s, %s)",
    render=render_digest,
    mark_sent="SELECT record_digest_outcomes('sent', %b, %b)",
    mark_failed="SELECT record_digest_outcomes('failed', %b, %b)",
    mark_skipped="SELECT record_digest_outcomes('skipped', %b, %b)",
    requeue="SELECT record_digest_outcomes('requeue', %b, %b)",
    release="SELECT record_digest_outcomes('release', %b)",
)
QUEUES = (DELIVERIES, DIGESTS)


@dataclass
class DeliveryCounts:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    requeued: int = 0
    deliveries_skipped: int = 0
    released: int = 0
    batches: int = 0
    digests_sent: int = 0
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
    unsent: set[int] = field(default_factory=set)


def count_due(conn: psycopg.Connection, up_to: int | None, channels: list[str] | None = None) -> int:
    """Instant deliveries plus digests that a claim would hand out now."""
    return sum(_scalar(conn, queue.count_due, [up_to, channels]) for queue in QUEUES)


def deliver(conn: psycopg.Connection, sender: Sender, batch_size: int, max_send: int,
            record_interval: float = RECORD_INTERVAL_SECONDS, stop: threading.Event | None = None) -> DeliveryCounts:
    """Instant deliveries first, then digests, until nothing sendable is due, max_send rows were
    claimed or stop is set. Only the channels the sender can serve now are claimed; the rest stay
    queued. A sender with providers per channel sends many at once; a local one, one at a time."""
    from alerts.concurrent_delivery import drain_concurrently, lease_seconds_of  # it builds on this module

    counts = DeliveryCounts()
    concurrent = sender.configured_channels() is not None
    lease = lease_seconds_of(conn) if concurrent else 0.0
    for queue in QUEUES:
        if stop is not None and stop.is_set():
            break
        if concurrent:
            drain_concurrently(conn, queue, sender, batch_size, max_send, counts, record_interval, lease, stop)
        else:
            drain(conn, queue, sender, batch_size, max_send, counts, record_interval)
    channels = sendable_channels(sender)
    counts.stopped_early = counts.claimed >= max_send and count_due(conn, 1, channels) > 0
    report_unserved_channels(conn, sender, counts)
    return counts


def drain(conn: psycopg.Connection, queue: Queue, sender: Sender, batch_size: int, max_send: int,
          counts: DeliveryCounts, record_interval: float = RECORD_INTERVAL_SECONDS) -> None:
    channels = sendable_channels(sender)
    while counts.claimed < max_send and (channels is None or channels):
        rows = conn.execute(queue.claim, [min(batch_size, max_send - counts.claimed), channels]).fetchall()
        if not rows:
            return
        counts.claimed += len(rows)
        counts.batches += 1
        send_and_record(conn, queue, sender, rows, counts, record_interval)
        channels = sendable_channels(sender)


def send_and_record(conn: psycopg.Connection, queue: Queue, sender: Sender, rows: list[dict],
                    counts: DeliveryCounts, record_interval: float) -> None:
    """One claimed batch: send every row; record the outcomes when done, and every record_interval
    seconds meanwhile. Whatever happens, each row ends with one recorded outcome or is released."""
    outcomes = BatchOutcomes(unsent={int(r[queue.id_column]) for r in rows})
    recorded_at = time.monotonic()

    def record_if_due() -> None:
        nonlocal recorded_at
        if time.monotonic() - recorded_at >= record_interval:
            make_durable(sender, outcomes)
            record(conn, queue, outcomes, counts, release_unsent=False)
            recorded_at = time.monotonic()

    try:
        send_batch(queue, sender, rows, outcomes, counts, record_if_due)
    finally:
        record(conn, queue, outcomes, counts)


def sendable_channels(sender: Sender) -> list[str] | None:
    """The channels worth claiming now; None when the sender serves every channel."""
    available = sender.available_channels()
    return sorted(available) if available is not None else None


def report_unserved_channels(conn: psycopg.Connection, sender: Sender, counts: DeliveryCounts) -> None:
    """Count what stays queued because its channel has no sender, or is held by its provider."""
    configured = sender.configured_channels()
    if configured is None:
        return
    sendable = sendable_channels(sender) or []
    for channel in CHANNELS:
        due = count_due(conn, None, [channel])
        if due and channel not in configured:
            counts.channels_not_configured[channel] = due
            log.error("%s %s messages stay queued: %s", due, channel, ChannelNotConfigured(channel))
        elif due and channel not in sendable:
            counts.channels_held[channel] = due


def send_batch(queue: Queue, sender: Sender, rows: list[dict], outcomes: BatchOutcomes,
               counts: DeliveryCounts, after_each: Callable[[], None] = lambda: None) -> None:
    """Send each row, calling after_each once its result is known; a row leaves outcomes.unsent
    only then. A row whose channel cannot be served now stays unsent and is released untouched."""
    for row in rows:
        row_id = int(row[queue.id_column])
        problem = destination_problem(row["channel"], row["destination"])
        if problem:
            outcomes.skipped.append((row_id, problem))
        elif row.get("items") == []:
            outcomes.skipped.append((row_id, "digest has no queued member left"))
        else:
            try:
                result = sender.send(queue.render(row))
            except ChannelUnavailable:
                continue
            except Exception as error:  # a sender bug must not lose the batch
                result = SendResult.transient(f"{type(error).__name__}: {one_line(error)}")
            file_result(outcomes, row_id, result, row["channel"], counts)
        outcomes.unsent.discard(row_id)
        after_each()
    make_durable(sender, outcomes)


def make_durable(sender: Sender, outcomes: BatchOutcomes) -> None:
    """Flush the sender before anything is recorded sent; if it cannot, the rows sent since the
    last record go back to the queue instead."""
    try:
        sender.flush()
    except Exception as error:
        log.error("sender %s could not make the batch durable: %s", sender.name, one_line(error))
        outcomes.requeued.extend((i, f"flush failed: {one_line(error)}") for i, _ in outcomes.sent)
        outcomes.sent.clear()


def file_result(outcomes: BatchOutcomes, row_id: int, result: SendResult, channel: str,
                 counts: DeliveryCounts) -> None:
    if result.outcome is Outcome.SENT:
        outcomes.sent.append((row_id, result.provider_message_id or ""))
        return
    error = mask_text(result.error or "no reason given")
    counts.errors_by_channel[channel] = counts.errors_by_channel.get(channel, 0) + 1
    if result.outcome is Outcome.PERMANENT:
        outcomes.failed.append((row_id, error))
    else:
        outcomes.requeued.append((row_id, error))


def record(conn: psycopg.Connection, queue: Queue, outcomes: BatchOutcomes, counts: DeliveryCounts, *,
           release_unsent: bool = True) -> None:
    """Write the outcomes gathered so far and forget them; each function changes only rows still
    'sending'. With release_unsent, the rows never handed to a provider go back to 'queued'."""
    if queue is DIGESTS:
        counts.digests_sent += len(outcomes.sent)
    calls = (
        (queue.mark_sent, outcomes.sent, "sent"),
        (queue.mark_failed, outcomes.failed, "failed"),
        (queue.requeue, outcomes.requeued, "requeued"),
        (queue.mark_skipped, outcomes.skipped, "deliveries_skipped"),
    )
    for statement, pairs, counter in calls:
        if pairs:
            ids, details = zip(*pairs, strict=True)
            changed = _scalar(conn, statement, [list(ids), list(details)])
            setattr(counts, counter, getattr(counts, counter) + changed)
            pairs.clear()
    if release_unsent and outcomes.unsent:
        counts.released += _scalar(conn, queue.release, [sorted(outcomes.unsent)])
        outcomes.unsent.clear()


def _scalar(conn: psycopg.Connection, sql: str, params: list) -> int:
    row = conn.cursor(row_factory=tuple_row).execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])
