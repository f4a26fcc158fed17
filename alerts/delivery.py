"""Phase C: claim, send and record, for instant deliveries and for digests alike.

A Queue names the stored functions of one kind of sendable row; deliver() runs the same
claim -> send -> record loop over each: many messages in flight per channel through the real
providers (alerts.concurrent_delivery), one at a time, in batches, into the file outbox or the
console (this module), where a local write is faster than any thread hand-over; what both
share (the queues, the counts, recording the outcomes, the work connection) is
alerts.delivery_common. Every
claimed row ends the batch with exactly one recorded outcome or is released unsent; every
outcome names the claim_token of the claim it
belongs to, so an outcome that comes too late (the lease ended and the row was claimed again)
changes nothing and is counted as stale instead of overwriting the newer claim.

A batch is claimed in one statement (DEFAULT_BATCH_SIZE rows: each claim walks the queue
index from its head, so fewer, larger claims cost less). Its outcomes are written when the
batch is done, and also whenever RECORD_INTERVAL_SECONDS have passed since they were last
written, so a runner that dies mid-batch has sent at most that long's messages (and never
more than one batch) without their outcome: the batch's lease sends those again.

The run stops handing messages to providers when it is asked to (a stop signal: checked
before every message) or when sending is paused (an exclusive holder of Phase C's lock: checked
before every claim and every record, one round trip each, and inside every claim's transaction):
it then records what it sent and releases the rest.

A claimed row whose user unsubscribed from the channel, or whose destination is suppressed (a
provider said it is gone for good), is recorded skipped with the reason and never reaches the
provider: one look-up per claim (alerts_claims_to_skip). A provider's answer that the destination
is gone suppresses it (alerts_record_suppressions) before the row's outcome is recorded.
"""

import logging
import time
from collections.abc import Callable

import psycopg

from alerts import metrics
from alerts.concurrent_delivery import drain_concurrently
from alerts.db import one_line
from alerts.delivery_common import (
    DELIVERIES,
    DIGESTS,
    LEASE_ENDS,
    LEASE_USE,
    PAUSE_GATE,
    QUEUES,
    BatchOutcomes,
    Database,
    DeliveryCounts,
    Queue,
    RunGuard,
    SendingPaused,
    file_result,
    lease_over,
    make_durable,
    mark_skips,
    record,
    skip_reason,
    stamp_lease,
)
from alerts.failures import describe
from alerts.secrets import mask_text
from alerts.senders.base import Sender, SendResult
from alerts.senders.channels import CHANNELS, ChannelNotConfigured, ChannelUnavailable

# The loop's names and the shared ones (alerts.delivery_common), importable from here as before.
__all__ = [
    "BatchOutcomes",
    "DEFAULT_BATCH_SIZE",
    "DELIVERIES",
    "DIGESTS",
    "Database",
    "DeliveryCounts",
    "LEASE_ENDS",
    "LEASE_USE",
    "PAUSE_GATE",
    "QUEUES",
    "Queue",
    "RECORD_INTERVAL_SECONDS",
    "RunGuard",
    "SendingPaused",
    "UNSERVED_COUNT_CAP",
    "count_due",
    "deliver",
    "drain",
    "file_result",
    "lease_over",
    "make_durable",
    "record",
    "report_unserved_channels",
    "send_and_record",
    "send_batch",
    "sendable_channels",
    "stamp_lease",
]

log = logging.getLogger("alerts")

DEFAULT_BATCH_SIZE = 500
RECORD_INTERVAL_SECONDS = 1.0
UNSERVED_COUNT_CAP = 100_000  # what stays queued for a channel is counted up to this many, not over the backlog


def count_due(db: Database, up_to: int | None, channels: list[str] | None = None) -> int:
    """Instant deliveries plus digests that a claim would hand out now."""
    return sum(db.scalar(queue.count_due, [up_to, channels]) for queue in QUEUES)


def deliver(db: Database, sender: Sender, batch_size: int, max_send: int,
            record_interval: float = RECORD_INTERVAL_SECONDS, guard: RunGuard | None = None) -> DeliveryCounts:
    """Instant deliveries first, then digests, until nothing sendable is due, max_send rows were
    claimed, or the guard says stop. Only the channels the sender can serve now are claimed.
    A lost lock or database ends the run with counts.error set; nothing claimed is lost."""
    guard = guard or RunGuard()
    counts = DeliveryCounts()
    concurrent = sender.configured_channels() is not None
    try:
        lease = float(db.value("SELECT alerts_lease_seconds()"))  # type: ignore[arg-type]
        for queue in QUEUES:
            if concurrent:
                drain_concurrently(db, queue, sender, batch_size, max_send, counts, record_interval, lease, guard)
            else:
                drain(db, queue, sender, batch_size, max_send, counts, record_interval, guard, lease)
            if counts.stopped_by:
                return counts
        channels = sendable_channels(sender)
        counts.stopped_early = counts.taken >= max_send and count_due(db, 1, channels) > 0
        report_unserved_channels(db, sender, counts)
    except SendingPaused as error:
        counts.paused = True
        log.warning("%s: stopped claiming; every outcome was recorded and the rows never handed over were "
                    "released", error)
    except psycopg.OperationalError as error:
        counts.error = (f"{describe(error)}; {counts.unrecorded_sent} messages sent without a recorded outcome go "
                        "out again when their lease ends")
    return counts


def drain(db: Database, queue: Queue, sender: Sender, batch_size: int, max_send: int,
          counts: DeliveryCounts, record_interval: float, guard: RunGuard, lease_seconds: float = 0.0) -> None:
    channels = sendable_channels(sender)
    while counts.claimed < max_send and (channels is None or channels):
        if guard.stop_requested():
            counts.stopped_by = guard.stop_requested()
            return
        guard.check_paused()
        rows = db.rows(queue.claim, [min(batch_size, max_send - counts.claimed), channels])
        stamp_lease(rows, lease_seconds)
        mark_skips(db, queue, rows, counts)
        queue.prepare(db, rows)
        if not rows:
            return
        counts.claimed += len(rows)
        counts.batches += 1
        send_and_record(db, queue, sender, rows, counts, record_interval, guard)
        channels = sendable_channels(sender)


def send_and_record(db: Database, queue: Queue, sender: Sender, rows: list[dict], counts: DeliveryCounts,
                    record_interval: float, guard: RunGuard) -> None:
    """One claimed batch: send every row; record the outcomes when done, and every record_interval
    seconds meanwhile. Whatever happens, each row ends with one recorded outcome or is released,
    except a message in flight when the run is stopped at once: its lease decides."""
    outcomes = BatchOutcomes(unsent={int(r[queue.id_column]): int(r["claim_token"]) for r in rows})
    recorded_at = time.monotonic()

    def record_if_due() -> None:
        nonlocal recorded_at
        if time.monotonic() - recorded_at >= record_interval:
            make_durable(sender, outcomes)
            guard.check_paused()
            record(db, queue, outcomes, counts, release_unsent=False)
            recorded_at = time.monotonic()

    try:
        send_batch(queue, sender, rows, outcomes, counts, record_if_due, guard)
        guard.raise_if_paused()
    except BaseException:
        make_durable(sender, outcomes)  # what went out before the error is written before it is recorded sent
        raise
    finally:
        counts.unknown_fate += len(outcomes.in_flight)
        if guard.stop_requested() and not counts.stopped_by:
            counts.stopped_by = guard.stop_requested()
        record(db, queue, outcomes, counts)


def sendable_channels(sender: Sender) -> list[str] | None:
    """The channels worth claiming now; None when the sender serves every channel."""
    available = sender.available_channels()
    return sorted(available) if available is not None else None


def report_unserved_channels(db: Database, sender: Sender, counts: DeliveryCounts) -> None:
    """Count what stays queued because its channel has no sender, or is held by its provider."""
    configured = sender.configured_channels()
    if configured is None:
        return
    sendable = sendable_channels(sender) or []
    provider_holds = sender.provider_holds
    for channel in CHANNELS:
        due = count_due(db, UNSERVED_COUNT_CAP, [channel])  # bounded: "at least" past the cap
        if due and channel not in configured:
            counts.channels_not_configured[channel] = due
            log.error("%s %s messages stay queued: %s", due, channel, ChannelNotConfigured(channel))
        elif due and channel not in sendable:
            counts.channels_held[channel] = due
            if channel in provider_holds:
                counts.channels_unavailable[channel] = mask_text(provider_holds[channel])
                log.error("%s %s messages stay queued for the next run: the provider is unavailable (%s)",
                          due, channel, counts.channels_unavailable[channel])


def send_batch(queue: Queue, sender: Sender, rows: list[dict], outcomes: BatchOutcomes, counts: DeliveryCounts,
               after_each: Callable[[], None] = lambda: None, guard: RunGuard | None = None) -> None:
    """Send each row, calling after_each once its result is known; a row leaves outcomes.unsent when
    it is handed to the provider and outcomes.in_flight when its result is known. A row whose channel
    cannot be served now, and every row after a stop request, stays unsent and is released."""
    # one message per row: the names the loop uses are looked up once per batch
    stop_sending = guard.stop_sending if guard is not None else lambda: False
    id_column, render, send = queue.id_column, queue.render, sender.send
    unsent, in_flight = outcomes.unsent, outcomes.in_flight
    for row in rows:
        if stop_sending():
            break
        row_id = int(row[id_column])
        token = unsent[row_id]
        problem = skip_reason(row)
        if lease_over(row):  # stays unsent: released, fenced by its claim token
            counts.lease_expired += 1
            continue
        if problem:
            outcomes.skipped.append((row_id, token, problem))
            metrics.message(row["channel"], "skipped")
        else:
            message = render(row)
            in_flight[row_id] = unsent.pop(row_id)
            try:
                result = send(message)
            except ChannelUnavailable:
                unsent[row_id] = in_flight.pop(row_id)
                continue
            except Exception as error:  # a sender bug must not lose the batch
                result = SendResult.transient(f"{type(error).__name__}: {one_line(error)}")
            del in_flight[row_id]
            file_result(outcomes, row_id, token, result, row["channel"], counts)
        unsent.pop(row_id, None)
        after_each()
    make_durable(sender, outcomes)
