"""Phase C: claim, send and record, for instant deliveries and for digests alike.

A Queue names the stored functions of one kind of sendable row; deliver() runs the same
claim -> send -> record loop over each: many messages in flight per channel through the real
providers (alerts.concurrent_delivery), one at a time, in batches, into the file outbox or the
console (this module), where a local write is faster than any thread hand-over. Every
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
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row, tuple_row

from alerts.db import connect, one_line
from alerts.destinations import destination_problem
from alerts.event_facts import attach_to_deliveries, attach_to_digests
from alerts.failures import describe
from alerts.locks import SENDING_OPEN
from alerts.render import OutgoingMessage, render, render_digest
from alerts.secrets import mask_text
from alerts.senders.base import Outcome, Sender, SendResult
from alerts.senders.channels import CHANNELS, ChannelNotConfigured, ChannelUnavailable
from alerts.shutdown import StopSignal

log = logging.getLogger("alerts")

DEFAULT_BATCH_SIZE = 500
RECORD_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class Queue:
    """The SQL of one kind of sendable row. Every outcome call takes (ids, claim_tokens, details)
    except release, which takes (ids, claim_tokens).

    The outcome calls pass their arrays as binary parameters (%b): psycopg dumps a list element by
    element, and in binary it does so in C, which matters at one call per batch of hundreds of rows."""

    id_column: str
    kind: str  # 'delivery' or 'digest', as the suppression functions name it
    claim: str
    count_due: str
    render: Callable[[dict], OutgoingMessage]
    mark_sent: str
    mark_failed: str
    mark_skipped: str
    requeue: str
    release: str
    # gives the claimed rows what their messages say beyond the claim (alerts.event_facts)
    prepare: Callable[["Database", list[dict]], None] = lambda db, rows: None

    @property
    def to_skip(self) -> str:
        """The claimed rows to skip (user unsubscribed, destination suppressed), with the reason."""
        return f"SELECT id, reason FROM alerts_claims_to_skip('{self.kind}', %b, %b)"

    @property
    def suppress(self) -> str:
        """Suppress the destinations of claimed rows whose provider said they are gone for good."""
        return f"SELECT alerts_record_suppressions('{self.kind}', %b, %b, %b)"


# Every claim takes Phase C's lock in shared mode in its own transaction; while a DBA holds it
# exclusively (the pause switch) the claim function is not even called (a one-time filter).
PAUSE_GATE = f" WHERE (SELECT {SENDING_OPEN})"

DELIVERIES = Queue(
    id_column="delivery_id",
    kind="delivery",
    # only the columns render() and send_batch() read: each column returned costs a conversion a row
    claim="SELECT delivery_id, claim_token, user_id, channel, destination, attempts, alert_event_id, alert_type,"
          " severity, scope_region, scope_assets, headline, body, event_created_at FROM claim_deliveries(%s, %s)"
          + PAUSE_GATE,
    count_due="SELECT count_due_deliveries(%s, %s)",
    render=render,
    mark_sent="SELECT mark_deliveries_sent(%b, %b, %b)",
    mark_failed="SELECT mark_deliveries_failed(%b, %b, %b)",
    mark_skipped="SELECT mark_deliveries_skipped(%b, %b, %b)",
    requeue="SELECT requeue_deliveries(%b, %b, %b)",
    release="SELECT release_deliveries(%b, %b)",
    prepare=attach_to_deliveries,
)
DIGESTS = Queue(
    id_column="digest_id",
    kind="digest",
    claim="SELECT * FROM claim_digests(%s, %s)" + PAUSE_GATE,
    count_due="SELECT count_due_digests(%s, %s)",
    render=render_digest,
    mark_sent="SELECT record_digest_outcomes('sent', %b, %b, %b)",
    mark_failed="SELECT record_digest_outcomes('failed', %b, %b, %b)",
    mark_skipped="SELECT record_digest_outcomes('skipped', %b, %b, %b)",
    requeue="SELECT record_digest_outcomes('requeue', %b, %b, %b)",
    release="SELECT record_digest_outcomes('release', %b, %b)",
    prepare=attach_to_digests,
)
QUEUES = (DELIVERIES, DIGESTS)


UNSERVED_COUNT_CAP = 100_000  # what stays queued for a channel is counted up to this many, not over the backlog
LEASE_USE = 0.8  # a claimed row is handed to a provider only within the first 80 % of its lease
LEASE_ENDS = "_lease_ends"  # where a claimed row carries that moment, on this process's monotonic clock
SKIP_REASON = "_skip_reason"  # where a claimed row carries why it is skipped unsent (unsubscribed, suppressed)


def stamp_lease(rows: list[dict], lease_seconds: float) -> None:
    """Note on each claimed row when it stops being safe to send. A process frozen past that moment
    (SIGSTOP, a paused VM, a thread stuck on a socket) releases the row instead of sending what
    another sender has reclaimed and sent meanwhile; the monotonic clock runs on while it is frozen."""
    if lease_seconds > 0:
        ends = time.monotonic() + lease_seconds * LEASE_USE
        for row in rows:
            row[LEASE_ENDS] = ends


def lease_over(row: dict) -> bool:
    ends = row.get(LEASE_ENDS)
    return ends is not None and time.monotonic() >= ends


@dataclass
class DeliveryCounts:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    requeued: int = 0
    deliveries_skipped: int = 0
    # of the claimed rows, those skipped unsent: the user unsubscribed from the channel or the destination is suppressed
    skipped_unsubscribed_or_suppressed: int = 0
    # destinations a provider answered are gone for good this run: later deliveries to them are skipped
    destinations_suppressed: int = 0
    released: int = 0
    batches: int = 0
    digests_sent: int = 0
    stopped_early: bool = False
    # outcomes that changed nothing: the row had been claimed again (its lease ended) meanwhile
    stale_outcomes: int = 0
    # of those, messages that went out: the newer claim may send them again
    stale_sent: int = 0
    # messages sent whose outcome could not be recorded (the database went away): sent again after their lease
    unrecorded_sent: int = 0
    # messages handed to a provider when the run was stopped at once: their fate is unknown, the lease decides
    unknown_fate: int = 0
    # claimed rows not sent because their lease ran out first (the run was frozen or slow): released unsent
    lease_expired: int = 0
    # an exclusive holder of Phase C's lock (the pause switch) stopped the run from claiming more
    paused: bool = False
    stopped_by: str | None = None
    error: str | None = None
    errors_by_channel: dict[str, int] = field(default_factory=dict)
    channels_not_configured: dict[str, int] = field(default_factory=dict)
    channels_held: dict[str, int] = field(default_factory=dict)
    channels_unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def taken(self) -> int:
        """Rows claimed and not released unsent: what counts against ALERTS_MAX_SEND_PER_RUN when many
        are in flight, where a row released by a hold is claimed again once the hold ends (it counts
        once). The one-at-a-time loop never claims a released row again in the same run, so it
        counts every claim: a sender that cannot serve a row it was given ends the run, not a loop."""
        return self.claimed - self.released


@dataclass
class BatchOutcomes:
    """What happened to a claimed batch so far: (id, claim_token, detail) per outcome."""

    sent: list[tuple[int, int, str]] = field(default_factory=list)
    failed: list[tuple[int, int, str]] = field(default_factory=list)
    requeued: list[tuple[int, int, str]] = field(default_factory=list)
    skipped: list[tuple[int, int, str]] = field(default_factory=list)
    suppressed: list[tuple[int, int, str]] = field(default_factory=list)  # destination gone: the provider's answer
    unsent: dict[int, int] = field(default_factory=dict)  # never handed to a provider: id -> claim_token
    in_flight: dict[int, int] = field(default_factory=dict)  # handed to a provider, no answer yet


class SendingPaused(Exception):
    """An exclusive holder of Phase C's lock (the pause switch) stops every sender from claiming."""


class RunGuard:
    """Why a Phase C run should stop handing messages to providers: a stop signal (checked before
    every message, no round trip), or sending paused by an exclusive holder of Phase C's lock
    (checked before every claim and every record, one round trip each)."""

    def __init__(self, sending_open: Callable[[], bool] = lambda: True, stop: StopSignal | None = None) -> None:
        self._sending_open = sending_open
        self._stop = stop or StopSignal()
        self.paused = False

    def stop_requested(self) -> str | None:
        return self._stop.signal_name

    def stop_sending(self) -> bool:
        """Checked before each message: a stop signal, or sending found paused."""
        return self._stop.requested or self.paused

    def check_paused(self) -> None:
        """Ask whether sending is paused (one round trip); raise SendingPaused when it is."""
        if not self.paused and not self._sending_open():
            self.paused = True
        self.raise_if_paused()

    def raise_if_paused(self) -> None:
        """Raise SendingPaused when a check already found sending paused (no round trip)."""
        if self.paused:
            raise SendingPaused("sending paused: a session holds alerts_v2_phase_c exclusively (the pause switch)")


class Database:
    """Phase C's work connection. A call that fails because the server closed the connection is
    tried once more on a new one: claims are safe to repeat, and outcomes are fenced."""

    def __init__(self, url: str, conn: psycopg.Connection | None = None) -> None:
        self._url = url
        self.conn = conn or connect(url)

    def scalar(self, sql: str, params: list) -> int:
        return int(self.value(sql, params))  # type: ignore[call-overload]

    def value(self, sql: str, params: list | None = None) -> object:
        row = self._execute(sql, params or [], tuple_row).fetchone()
        assert row is not None
        return row[0]

    def rows(self, sql: str, params: list) -> list[dict]:
        return self._execute(sql, params, dict_row).fetchall()

    def _execute(self, sql: str, params: list, row_factory: Callable) -> psycopg.Cursor:
        try:
            return self.conn.cursor(row_factory=row_factory).execute(sql, params)
        except psycopg.OperationalError as error:
            if not self.conn.closed:
                raise
            log.warning("the database connection closed (%s); reconnecting once", one_line(error))
            self.conn = connect(self._url)
            return self.conn.cursor(row_factory=row_factory).execute(sql, params)

    def close(self) -> None:
        self.conn.close()


def count_due(db: Database, up_to: int | None, channels: list[str] | None = None) -> int:
    """Instant deliveries plus digests that a claim would hand out now."""
    return sum(db.scalar(queue.count_due, [up_to, channels]) for queue in QUEUES)


def deliver(db: Database, sender: Sender, batch_size: int, max_send: int,
            record_interval: float = RECORD_INTERVAL_SECONDS, guard: RunGuard | None = None) -> DeliveryCounts:
    """Instant deliveries first, then digests, until nothing sendable is due, max_send rows were
    claimed, or the guard says stop. Only the channels the sender can serve now are claimed.
    A lost lock or database ends the run with counts.error set; nothing claimed is lost."""
    from alerts.concurrent_delivery import drain_concurrently  # it builds on this module

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
    finally:
        counts.unknown_fate += len(outcomes.in_flight)
        if guard.stop_requested() and not counts.stopped_by:
            counts.stopped_by = guard.stop_requested()
        record(db, queue, outcomes, counts)


def mark_skips(db: Database, queue: Queue, rows: list[dict], counts: DeliveryCounts) -> None:
    """Note on each claimed row whose user unsubscribed from the channel, or whose destination is
    suppressed, why it is skipped instead of sent (one round trip for the claim)."""
    if not rows:
        return
    ids = [int(row[queue.id_column]) for row in rows]
    tokens = [int(row["claim_token"]) for row in rows]
    reasons = {int(r["id"]): str(r["reason"]) for r in db.rows(queue.to_skip, [ids, tokens])}
    if not reasons:
        return
    for row in rows:
        reason = reasons.get(int(row[queue.id_column]))
        if reason is not None:
            row[SKIP_REASON] = reason
    counts.skipped_unsubscribed_or_suppressed += len(reasons)


def skip_reason(row: dict) -> str | None:
    """Why a claimed row is recorded skipped instead of sent, or None: unsubscribed, suppressed, no
    usable destination, or a digest left without members."""
    reason = row.get(SKIP_REASON) or destination_problem(row["channel"], row["destination"])
    if reason is None and row.get("items") == []:
        return "digest has no queued member left"
    return reason


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
    for row in rows:
        if guard is not None and guard.stop_sending():
            break
        row_id = int(row[queue.id_column])
        token = outcomes.unsent[row_id]
        problem = skip_reason(row)
        if lease_over(row):  # stays unsent: released, fenced by its claim token
            counts.lease_expired += 1
            continue
        if problem:
            outcomes.skipped.append((row_id, token, problem))
        else:
            message = queue.render(row)
            outcomes.in_flight[row_id] = outcomes.unsent.pop(row_id)
            try:
                result = sender.send(message)
            except ChannelUnavailable:
                outcomes.unsent[row_id] = outcomes.in_flight.pop(row_id)
                continue
            except Exception as error:  # a sender bug must not lose the batch
                result = SendResult.transient(f"{type(error).__name__}: {one_line(error)}")
            del outcomes.in_flight[row_id]
            file_result(outcomes, row_id, token, result, row["channel"], counts)
        outcomes.unsent.pop(row_id, None)
        after_each()
    make_durable(sender, outcomes)


def make_durable(sender: Sender, outcomes: BatchOutcomes) -> None:
    """Flush the sender before anything is recorded sent; if it cannot, the rows sent since the
    last record go back to the queue instead."""
    try:
        sender.flush()
    except Exception as error:
        log.error("sender %s could not make the batch durable: %s", sender.name, one_line(error))
        outcomes.requeued.extend((i, t, f"flush failed: {one_line(error)}") for i, t, _ in outcomes.sent)
        outcomes.sent.clear()


def file_result(outcomes: BatchOutcomes, row_id: int, token: int, result: SendResult, channel: str,
                 counts: DeliveryCounts) -> None:
    if result.outcome is Outcome.SENT:
        outcomes.sent.append((row_id, token, result.provider_message_id or ""))
        return
    error = mask_text(result.error or "no reason given")
    counts.errors_by_channel[channel] = counts.errors_by_channel.get(channel, 0) + 1
    if result.outcome is Outcome.PERMANENT:
        if result.suppress:
            outcomes.suppressed.append((row_id, token, mask_text(result.suppress)))
        outcomes.failed.append((row_id, token, error))
    else:
        outcomes.requeued.append((row_id, token, error))


def record(db: Database, queue: Queue, outcomes: BatchOutcomes, counts: DeliveryCounts, *,
           release_unsent: bool = True) -> None:
    """Write the outcomes gathered so far and forget them; each function changes only rows still
    held by the claim named by their token, and what it did not change is counted as stale. With
    release_unsent, the rows never handed to a provider go back to 'queued'. Destinations a provider
    said are gone are suppressed first, while their rows are still held by the claim."""
    if outcomes.suppressed:
        ids, tokens, reasons = (list(column) for column in zip(*outcomes.suppressed, strict=True))
        counts.destinations_suppressed += db.scalar(queue.suppress, [ids, tokens, reasons])
        outcomes.suppressed.clear()
    calls = (
        (queue.mark_sent, outcomes.sent, "sent"),
        (queue.mark_failed, outcomes.failed, "failed"),
        (queue.requeue, outcomes.requeued, "requeued"),
        (queue.mark_skipped, outcomes.skipped, "deliveries_skipped"),
    )
    for statement, entries, counter in calls:
        if not entries:
            continue
        ids, tokens, details = (list(column) for column in zip(*entries, strict=True))
        try:
            changed = db.scalar(statement, [ids, tokens, details])
        except psycopg.OperationalError:
            if counter == "sent":
                counts.unrecorded_sent += len(entries)
            raise
        setattr(counts, counter, getattr(counts, counter) + changed)
        _count_stale(counts, counter, len(entries) - changed, queue)
        if queue is DIGESTS and counter == "sent":
            counts.digests_sent += changed
        entries.clear()
    if release_unsent and outcomes.unsent:
        ids = sorted(outcomes.unsent)
        released = db.scalar(queue.release, [ids, [outcomes.unsent[i] for i in ids]])
        counts.released += released
        _count_stale(counts, "released", len(ids) - released, queue)
        outcomes.unsent.clear()


def _count_stale(counts: DeliveryCounts, outcome: str, stale: int, queue: Queue) -> None:
    if stale <= 0:
        return
    counts.stale_outcomes += stale
    if outcome == "sent":
        counts.stale_sent += stale
    log.warning("%s %s outcomes were stale and changed nothing: the rows were claimed again after their lease "
                "ended%s", stale, outcome, " (those messages may go out twice)" if outcome == "sent" else "")
