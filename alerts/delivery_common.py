"""What Phase C's two ways of sending share (alerts.delivery: one at a time; alerts.concurrent_delivery:
many in flight per channel): the queues' SQL, the run's counts, a batch's outcomes and how they are
recorded (each fenced by its claim token), the lease stamp, the run guard and the work connection."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row, tuple_row

from alerts import metrics
from alerts.db import connect, one_line
from alerts.destinations import destination_problem
from alerts.event_facts import attach_to_deliveries, attach_to_digests
from alerts.failures import retry_transient
from alerts.locks import SENDING_OPEN
from alerts.render import OutgoingMessage, render, render_digest
from alerts.secrets import mask_text
from alerts.senders.base import Outcome, Sender, SendResult
from alerts.shutdown import StopSignal

log = logging.getLogger("alerts")


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
        """One call; a deadlock or serialization failure (e.g. beside a --migrate) is tried again."""
        return retry_transient(self.conn, "phase c", lambda: self._execute_once(sql, params, row_factory))

    def _execute_once(self, sql: str, params: list, row_factory: Callable) -> psycopg.Cursor:
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
        metrics.message(channel, "sent")
        return
    error = mask_text(result.error or "no reason given")
    counts.errors_by_channel[channel] = counts.errors_by_channel.get(channel, 0) + 1
    if result.outcome is Outcome.PERMANENT:
        if result.suppress:
            outcomes.suppressed.append((row_id, token, mask_text(result.suppress)))
        outcomes.failed.append((row_id, token, error))
        metrics.message(channel, "failed")
    else:
        outcomes.requeued.append((row_id, token, error))
        metrics.message(channel, "retry")


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
    metrics.stale(outcome, stale)
    if outcome == "sent":
        counts.stale_sent += stale
    log.warning("%s %s outcomes were stale and changed nothing: the rows were claimed again after their lease "
                "ended%s", stale, outcome, " (those messages may go out twice)" if outcome == "sent" else "")


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
