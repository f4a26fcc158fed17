"""Phase C with many messages in flight: one lane per channel, each with as many sending threads
as the channel allows (ALERTS_CONCURRENCY_<CHANNEL>), fed by claims of that channel alone.

Why threads: a provider's limits keep tens of messages in flight, not thousands, and a thread
waiting on a socket costs little and releases the GIL. Threads keep the tested synchronous
clients (smtplib with its STARTTLS and login rules, httpx.Client's keep-alive pool, which is
thread-safe) and keep the database side on the loop's own synchronous connection: only the loop
thread talks to PostgreSQL.

The loop thread claims for each lane whose claimed rows run low, sized from the channel's rate
and the lease so a claim is sent well within it (claim_size()); it gathers the results, and
records them every record_interval seconds and when the lanes are done. A thread reserves its
message's start time with the sender (turn(): the channel's steady rate, one chat's own pace,
from send slots shared by every sender process when the run shares them), waits for it, and
hands the message over only while the run is not stopping. So:

- each claimed row ends with exactly one recorded outcome (fenced by its claim token), or is
  released when it was never handed to a provider (held channel, stop signal, sending paused,
  lease run out), or,
  when its send outlives the stop's grace or the run is stopped at once, stays 'sending' until
  its lease ends (its fate is unknown: another attempt must not race it);
- a stop signal stops the threads from handing over new messages at once; so does a pause (an
  exclusive holder of Phase C's lock), asked before every claim and every record (every second);
  a claimed row whose lease has run past LEASE_USE is released, never handed over;
- after a crash at most the messages in flight and those whose outcome was not yet recorded
  (the last record_interval's) are sent again;
- memory is bounded by the claims: at most claim size + 2 x threads rows per lane.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from alerts import metrics
from alerts.db import one_line
from alerts.delivery_common import (
    BatchOutcomes,
    Database,
    DeliveryCounts,
    Queue,
    RunGuard,
    file_result,
    lease_over,
    make_durable,
    mark_skips,
    record,
    skip_reason,
    stamp_lease,
)
from alerts.senders.base import Sender, SendResult
from alerts.senders.channels import ChannelUnavailable, TurnNotYet

log = logging.getLogger("alerts")

LEASE_SHARE = 0.5  # a claim is sized to be sent within half its lease at the channel's rate
STOP_GRACE_SECONDS = 30.0  # how long sends handed to a provider may finish when the run stops on an error
WAIT_OUT_HOLD_SECONDS = 10.0  # a channel held no longer than this keeps the run going; longer: the next run


@dataclass
class Job:
    row_id: int
    token: int
    row: dict
    channel: str
    lease_over: bool = False  # its lease ran out before its turn: never handed over, released


@dataclass
class Done:
    job: Job
    result: SendResult | None  # None: never handed to the provider, to be released


@dataclass
class Lane:
    """One channel's claimed rows (channel None: a sender that serves every channel) and its threads."""

    channel: str | None
    threads: int
    jobs: "queue.SimpleQueue[Job | None]" = field(default_factory=queue.SimpleQueue)
    pending: int = 0  # claimed rows without a result yet: queued for a thread or in flight
    exhausted: bool = False  # the last claim found fewer due rows than it asked for
    sent: int = 0
    first_result_at: float | None = None
    workers: list[threading.Thread] = field(default_factory=list)

    def measured_rate(self, now: float) -> float | None:
        """Results per second since the first one, once there is a second of history."""
        if self.first_result_at is None or now - self.first_result_at < 1.0:
            return None
        return self.sent / (now - self.first_result_at)


class Handover:
    """The line between "not yet given to a provider" (safe to release) and "given" (fate unknown until
    it answers). stop() closes it: no message is handed over afterwards."""

    def __init__(self, guard: RunGuard) -> None:
        self.stopping = threading.Event()
        self.results: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._guard = guard
        self._lock = threading.Lock()
        self._handed: set[int] = set()

    def take(self, row_id: int) -> bool:
        with self._lock:
            if self.stopping.is_set() or self._guard.stop_sending():  # a stop signal, or sending paused
                return False
            self._handed.add(row_id)
            return True

    def give_back(self, row_id: int) -> None:
        with self._lock:
            self._handed.discard(row_id)

    def stop(self) -> None:
        with self._lock:
            self.stopping.set()

    def handed(self, row_id: int) -> bool:
        with self._lock:
            return row_id in self._handed


def take_turn(job: Job, sender: Sender, handover: Handover) -> float | None:
    """The moment the message may start, reserved; None when the run stops while its destination is
    still within its interval (TurnNotYet: waited out here, then asked again)."""
    while True:
        try:
            return sender.turn(job.channel, str(job.row["destination"]))
        except TurnNotYet as later:
            if handover.stopping.wait(max(later.at - time.monotonic(), 0.0)):
                return None


def send_one(job: Job, sender: Sender, queue_def: Queue, handover: Handover) -> SendResult | None:
    """Wait for the channel's turn, then send; None when the message was never handed to the provider."""
    if handover.stopping.is_set():
        return None
    try:
        start = take_turn(job, sender, handover)
        if start is None:
            return None
        message = queue_def.render(job.row)
    except ChannelUnavailable:
        return None
    except Exception as error:  # a rendering bug must not lose the row
        return SendResult.transient(f"{type(error).__name__}: {one_line(error)}")
    delay = start - time.monotonic()
    if delay > 0 and handover.stopping.wait(delay):
        return None
    if lease_over(job.row):  # another sender may have reclaimed it meanwhile
        job.lease_over = True
        return None
    if not handover.take(job.row_id):
        return None
    try:
        return sender.send(message)
    except ChannelUnavailable:  # held meanwhile: nothing was attempted
        handover.give_back(job.row_id)
        return None
    except Exception as error:  # a sender bug must not lose the row
        return SendResult.transient(f"{type(error).__name__}: {one_line(error)}")


def send_lane(lane: Lane, sender: Sender, queue_def: Queue, handover: Handover) -> None:
    """A sending thread: one message after another from its lane, until the lane says stop (None)."""
    while (job := lane.jobs.get()) is not None:
        handover.results.put(Done(job, send_one(job, sender, queue_def, handover)))


def start_lanes(sender: Sender, queue_def: Queue, handover: Handover) -> list[Lane]:
    """One lane per configured channel (one for every channel when the sender serves them all), each
    with as many threads as the channel may have messages in flight."""
    configured = sender.configured_channels()
    channels: list[str | None] = sorted(configured) if configured is not None else [None]
    lanes = [Lane(channel, max(1, sender.max_in_flight(channel))) for channel in channels]
    for lane in lanes:
        for number in range(lane.threads):
            thread = threading.Thread(target=send_lane, args=(lane, sender, queue_def, handover), daemon=True,
                                      name=f"send-{lane.channel or 'any'}-{number}")
            thread.start()
            lane.workers.append(thread)
    return lanes


def claim_size(sender: Sender, lane: Lane, batch_size: int, lease_seconds: float, now: float) -> int:
    """As many rows as the channel sends in LEASE_SHARE of the lease at its rate (configured, or measured
    so far in this run, whichever is lower: with send slots shared by other processes this run gets
    only its share of the configured rate), at most batch_size; unknown rate: batch_size."""
    rates = [rate for rate in (sender.per_second(lane.channel), lane.measured_rate(now)) if rate]
    if not rates:
        return batch_size
    rate = min(rates)
    return max(1, min(batch_size, int(rate * lease_seconds * LEASE_SHARE)))


def lane_open(sender: Sender, lane: Lane) -> bool:
    available = sender.available_channels()
    return available is None or lane.channel is None or lane.channel in available


def may_claim(sender: Sender, lane: Lane, counts: DeliveryCounts, max_send: int) -> bool:
    return not lane.exhausted and counts.taken < max_send and lane_open(sender, lane)


def fill(db: Database, queue_def: Queue, sender: Sender, lanes: list[Lane], work: "Work", counts: DeliveryCounts,
         batch_size: int, max_send: int, lease_seconds: float, guard: RunGuard) -> None:
    """Claim for each lane whose rows run low (the lock checked first); rows with an unusable
    destination are skipped at once."""
    now = time.monotonic()
    for lane in lanes:
        if lane.pending >= 2 * lane.threads or not may_claim(sender, lane, counts, max_send):
            continue
        size = claim_size(sender, lane, batch_size, lease_seconds, now)
        if lane.pending >= size:
            continue
        wanted = min(size - lane.pending, max_send - counts.taken)  # what waits in the lane counts too
        guard.check_paused()
        rows = db.rows(queue_def.claim, [wanted, [lane.channel] if lane.channel else None])
        stamp_lease(rows, lease_seconds)
        mark_skips(db, queue_def, rows, counts)
        queue_def.prepare(db, rows)
        lane.exhausted = len(rows) < wanted
        counts.claimed += len(rows)
        counts.batches += 1 if rows else 0
        for row in rows:
            dispatch(lane, queue_def, row, work)


@dataclass
class Work:
    """The loop thread's view of the rows claimed and not yet recorded."""

    outcomes: BatchOutcomes = field(default_factory=BatchOutcomes)
    waiting: dict[int, int] = field(default_factory=dict)  # given to a lane, no result yet: id -> claim token


def dispatch(lane: Lane, queue_def: Queue, row: dict, work: Work) -> None:
    row_id, token = int(row[queue_def.id_column]), int(row["claim_token"])
    problem = skip_reason(row)
    if problem:
        work.outcomes.skipped.append((row_id, token, problem))
        metrics.message(row["channel"], "skipped")
    else:
        lane.pending += 1
        work.waiting[row_id] = token
        lane.jobs.put(Job(row_id, token, row, str(row["channel"])))


def gather(handover: Handover, lanes_by_channel: dict[str | None, Lane], work: Work, counts: DeliveryCounts,
           timeout: float) -> int:
    """File every result that arrives within timeout (waiting for the first only); how many."""
    filed = 0
    try:
        done = handover.results.get(timeout=max(timeout, 0.0))
        while True:
            if work.waiting.pop(done.job.row_id, None) is not None:
                file_done(done, lanes_by_channel, work, counts)
                filed += 1
            done = handover.results.get_nowait()
    except queue.Empty:
        return filed


def file_done(done: Done, lanes_by_channel: dict[str | None, Lane], work: Work, counts: DeliveryCounts) -> None:
    lane = lanes_by_channel.get(done.job.channel) or lanes_by_channel[None]
    lane.pending -= 1
    if done.result is None:
        work.outcomes.unsent[done.job.row_id] = done.job.token  # released at once, then due again
        lane.exhausted = False
        counts.lease_expired += done.job.lease_over
    else:
        lane.sent += 1
        lane.first_result_at = lane.first_result_at or time.monotonic()
        file_result(work.outcomes, done.job.row_id, done.job.token, done.result, done.job.channel, counts)


def wait_out_hold(sender: Sender, lane: Lane) -> bool:
    """A held lane that still has due rows keeps the run going when its hold ends soon."""
    if lane.channel is None or lane.exhausted:
        return False
    return 0 < sender.held_for(lane.channel) <= WAIT_OUT_HOLD_SECONDS


def busy(sender: Sender, lanes: list[Lane], counts: DeliveryCounts, max_send: int) -> bool:
    return any(lane.pending > 0 or may_claim(sender, lane, counts, max_send) or
               (counts.taken < max_send and wait_out_hold(sender, lane)) for lane in lanes)


def drain_concurrently(db: Database, queue_def: Queue, sender: Sender, batch_size: int, max_send: int,
                       counts: DeliveryCounts, record_interval: float, lease_seconds: float,
                       guard: RunGuard) -> None:
    """Send one queue's due rows, many in flight per channel, until nothing sendable is due,
    max_send rows were claimed, a stop is requested or the lock is lost."""
    handover = Handover(guard)
    lanes = start_lanes(sender, queue_def, handover)
    by_channel: dict[str | None, Lane] = {lane.channel: lane for lane in lanes}
    work = Work()
    recorded_at = time.monotonic()
    hard = False
    try:
        while not guard.stop_requested():
            fill(db, queue_def, sender, lanes, work, counts, batch_size, max_send, lease_seconds, guard)
            if not busy(sender, lanes, counts, max_send):
                break
            gather(handover, by_channel, work, counts, recorded_at + record_interval - time.monotonic())
            guard.raise_if_paused()
            if work.outcomes.unsent or time.monotonic() - recorded_at >= record_interval:
                make_durable(sender, work.outcomes)
                guard.check_paused()
                record(db, queue_def, work.outcomes, counts)
                recorded_at = time.monotonic()
    except KeyboardInterrupt:  # stopped at once (a second signal, the grace period over)
        hard = True
        raise
    finally:
        finish(db, queue_def, sender, lanes, by_channel, handover, work, counts, guard, hard)


def finish(db: Database, queue_def: Queue, sender: Sender, lanes: list[Lane], by_channel: dict[str | None, Lane],
           handover: Handover, work: Work, counts: DeliveryCounts, guard: RunGuard, hard: bool) -> None:
    """Stop handing messages over; unless stopped at once, let those in flight finish (a stop signal's
    own grace period bounds that wait, STOP_GRACE_SECONDS any other); record every outcome; release
    the rows never handed over; count the rest as of unknown fate, left to their lease."""
    handover.stop()
    interrupted: KeyboardInterrupt | None = None
    try:
        deadline = time.monotonic() + (0.0 if hard else STOP_GRACE_SECONDS)
        while work.waiting and time.monotonic() < deadline:
            gather(handover, by_channel, work, counts, min(0.1, deadline - time.monotonic()))
    except KeyboardInterrupt as stop:  # the grace period ran out, or a second signal
        interrupted = stop
    gather(handover, by_channel, work, counts, 0.0)
    for row_id, token in work.waiting.items():
        if handover.handed(row_id):
            counts.unknown_fate += 1
        else:
            work.outcomes.unsent[row_id] = token
    if counts.unknown_fate:
        log.error("%s messages were still with their provider when the run stopped: their rows stay 'sending' "
                  "until their lease ends", counts.unknown_fate)
    for lane in lanes:
        for _ in lane.workers:
            lane.jobs.put(None)
    if guard.stop_requested() and not counts.stopped_by:
        counts.stopped_by = guard.stop_requested()
    make_durable(sender, work.outcomes)
    record(db, queue_def, work.outcomes, counts)
    if interrupted is not None:
        raise interrupted
