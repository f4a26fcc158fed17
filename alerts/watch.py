"""`runner.py --watch`: a long-running process that runs the phases as soon as rows arrive.

It listens on channel alerts_v2_wake (notify triggers on events, risk_indices, asset_risk and
user_alert_deliveries) and runs a pass when told: A and B (then C) for new source rows, C alone
for deliveries another process created. Every phase takes the same advisory lock as under cron,
so any number of watchers and cron runs overlap safely. Notifications are only a shortcut: a
watcher also wakes on its poll interval (a full pass: A, B, D, C), at the earliest retry, lease
expiry or digest window close (alerts_next_wake()), and soon again when a phase was skipped
because another process held its lock. It survives database outages (one log line when the
connection is lost, one when it is back) and keeps a heartbeat row in alerts_watchers.
"""

import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Json

from alerts import metrics
from alerts.counts import merge_counts
from alerts.db import check_schema, connect, one_line
from alerts.errors import EXIT_CONNECTION_ENDED, AlertsError, UsageError
from alerts.failures import classify, describe
from alerts.fanout import FanoutBudget, fan_out_step
from alerts.history import run_error
from alerts.listener import RECONNECT, Outage, WakeListener
from alerts.phases import run_phase_c, run_sql_phase
from alerts.secrets import mask_url
from alerts.senders.base import Sender
from alerts.shutdown import STOP

log = logging.getLogger("alerts")

DEFAULT_POLL_SECONDS = 30.0
DEFAULT_FANOUT_EVENTS = 2  # alert events per Phase B call: 2 x 10,000 users is about half a second of fanout
# The first Phase B step of a pass considers at most this many (event, user) pairs, so Phase C sends
# the first messages well within 2 s of the commit whatever the audience: behind a full first step
# (alerts_config.fanout_chunk_rows, 50,000) the first message left 1.2-2.5 s after it on 2 busy cores.
DEFAULT_FIRST_FANOUT_ROWS = 5_000
BUSY_RETRY_SECONDS = 0.5  # a phase was skipped: its lock holder may have started before our rows arrived
BUSY_RETRY_MAX_SECONDS = 8.0  # a long holder (a cron run sending a backlog): each retry waits twice as long
SLICE_SECONDS = 1.0  # the longest a wait blocks before it looks at the stop flag
HEARTBEAT_SECONDS = 10.0  # heartbeat while idle; a pass beats when it ends
# Why a pass runs: a full pass (start, poll, after an outage), new source rows, deliveries created
# elsewhere, a timer (retry, lease, digest window), or a phase skipped because its lock was busy.
FULL, SOURCE, DELIVERIES, TIMER, BUSY = "full", "source", "deliveries", "timer", "busy"
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class WatchSettings:
    url: str
    listen_url: str
    name: str
    poll_seconds: float
    batch_size: int
    max_send: int
    fanout_events: int = 2
    first_fanout_rows: int = DEFAULT_FIRST_FANOUT_ROWS


@dataclass
class PassPlan:
    """Which phases a pass runs, from why it woke."""

    phases: list[str]
    reasons: set[str]

    @classmethod
    def from_reasons(cls, reasons: set[str]) -> "PassPlan":
        if reasons & {FULL, RECONNECT}:
            return cls(["a", "b", "d", "c"], reasons)
        if reasons & {SOURCE, BUSY}:
            return cls(["a", "b", "c"], reasons)
        if TIMER in reasons:
            return cls(["d", "c"], reasons)
        return cls(["c"], reasons)


@dataclass
class Watcher:
    settings: WatchSettings
    sender: Sender
    conn: psycopg.Connection | None = None
    listener: WakeListener | None = None
    passes: int = 0
    beaten_at: float = 0.0
    busy_passes: int = 0  # passes in a row that found a phase's lock held
    secret: str = ""  # what alerts_watcher_register() returned: its heartbeats must show it
    fanout_budget: FanoutBudget = field(default_factory=FanoutBudget)  # halved for good on a statement timeout
    db_outage: Outage = field(init=False)
    pass_failures: Outage = field(init=False)

    def __post_init__(self) -> None:
        self.db_outage = Outage(f"database connection to {mask_url(self.settings.url)}")
        self.pass_failures = Outage("passes")

    @property
    def stopping(self) -> bool:
        """SIGTERM or SIGINT arrived (alerts.shutdown): between passes the watcher stops at once; during
        one, Phase C finishes the messages in flight, records every outcome and releases the rest, as
        the cron runner does, and no further phase starts. A second signal stops at once."""
        return STOP.requested

    # ------------------------------------------------------------------ the loop

    def run(self, listener: WakeListener) -> dict[str, object]:
        """Pass, wait, pass, ... until stopped. `reasons` holds why the next pass must run."""
        self.listener = listener
        reasons: set[str] = {FULL} | listener.wait(0)  # LISTEN before the first pass: nothing slips between
        next_full = time.monotonic() + self.settings.poll_seconds
        while not self.stopping:
            if time.monotonic() >= next_full:
                reasons.add(FULL)
            retry_at = math.inf
            if reasons:
                outcome = self._pass(PassPlan.from_reasons(reasons)) if self._connected() else FAILED
                if outcome != FAILED and reasons & {FULL, RECONNECT}:
                    next_full = time.monotonic() + self.settings.poll_seconds
                reasons = {OK: set(), BUSY: {BUSY}, FAILED: {FULL}}[outcome]
                if outcome != OK:
                    retry_at = time.monotonic() + (self._busy_delay() if outcome == BUSY else self._failure_delay())
                self.busy_passes = self.busy_passes + 1 if outcome == BUSY else 0
            reasons |= self._wait(min(next_full, retry_at, self._next_wake()))
        return {"watch": "stopped", "name": self.settings.name, "passes": self.passes}

    def _wait(self, deadline: float) -> set[str]:
        """Until a notification or the deadline, in slices, so a stop request is seen within a second."""
        assert self.listener is not None
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {TIMER}
            woken = self.listener.wait(min(remaining, SLICE_SECONDS))
            if woken:
                return woken
            if time.monotonic() - self.beaten_at >= HEARTBEAT_SECONDS:
                self._beat(None)
        return set()

    def _busy_delay(self) -> float:
        """0.5 s after the first busy pass, doubling for each one after it, at most 8 s."""
        return min(BUSY_RETRY_SECONDS * 2 ** self.busy_passes, BUSY_RETRY_MAX_SECONDS)

    def _failure_delay(self) -> float:
        return max(self.db_outage.wait_seconds(), self.pass_failures.wait_seconds())

    def _next_wake(self) -> float:
        """alerts_next_wake() as a monotonic deadline; the poll covers it while the database is down."""
        if self.conn is None:
            return math.inf
        try:
            row = self.conn.execute("SELECT extract(epoch FROM alerts_next_wake() - now())").fetchone()
        except psycopg.Error as error:
            self._lost(error)
            return math.inf
        if not row or row[0] is None:
            return math.inf
        return time.monotonic() + max(0.0, float(row[0]))

    # ------------------------------------------------------------------ one pass

    def _pass(self, plan: PassPlan) -> str:
        """Run the plan's phases: OK, BUSY (a phase was skipped: another process held its lock) or
        FAILED (the database went away, or an SQL error; the next pass is a full one, after a backoff)."""
        started = time.perf_counter()
        counts: dict[str, object] = {}
        timings: list[str] = []
        try:
            self._run_phases(plan, counts, timings)
        except (psycopg.OperationalError, AlertsError) as error:  # AlertsError: Phase C could not connect
            kind = classify(error)
            if kind is not None and kind.exit_code != EXIT_CONNECTION_ENDED:  # a timeout, a deadlock: the
                self.pass_failures.failed(error)                              # connection is fine
                self._beat(None, describe(error))
                return FAILED
            self._lost(error)
            return FAILED
        except psycopg.Error as error:  # an SQL error must not end the watcher: logged once, retried
            self.pass_failures.failed(error)
            self._beat(None, f"{type(error).__name__}: {one_line(error)}")
            return FAILED
        self.pass_failures.recovered()
        self.passes += 1
        log.info("pass %s (%s): %s; %.2fs", self.passes, ",".join(sorted(plan.reasons)), "; ".join(timings),
                 time.perf_counter() - started)
        self._beat(counts)
        return BUSY if any(c.get("skipped") is True for c in counts.values() if isinstance(c, dict)) else OK

    def _run_phases(self, plan: PassPlan, counts: dict[str, object], timings: list[str]) -> None:
        """The pass's phases into counts, each timed and counted in the metrics (a phase that raised
        counts as failed)."""
        sent_between: dict[str, object] = {}  # Phase C between Phase B's chunks
        for phase in plan.phases:
            if self.stopping:
                break
            phase_started = time.perf_counter()
            try:
                if phase == "b" and "c" in plan.phases:
                    counts["b"], sent_between = self._fan_out_and_send()
                elif phase == "c" and sent_between:
                    counts["c"] = merge_counts(sent_between, self._phase("c"))
                else:
                    counts[phase] = self._phase(phase)
            except BaseException:
                metrics.phase_done(phase, None, time.perf_counter() - phase_started)
                raise
            took = time.perf_counter() - phase_started
            phase_counts = counts[phase]
            assert isinstance(phase_counts, dict)
            metrics.phase_done(phase, phase_counts, took, failed=run_error(phase_counts) is not None)
            timings.append(f"{phase} {summary(phase_counts)} {took:.2f}s")

    def _fan_out_and_send(self) -> tuple[dict[str, object], dict[str, object]]:
        """Phase B a few events at a time, each chunk followed by Phase C, so the first messages of a
        burst leave before the whole burst is fanned out; the first chunk at most first_fanout_rows
        pairs, so they leave soon even when one event reaches a large audience. Returns Phase B's
        counts and those of the Phase C runs between chunks, each added up."""
        total: dict[str, object] = {}
        sent: dict[str, object] = {}
        first_rows: int | None = self.settings.first_fanout_rows  # a small first step: the first messages soon
        while not self.stopping:
            counts = fan_out_step(self._work_conn(), self.fanout_budget, self.settings.fanout_events, first_rows)
            first_rows = None
            total = merge_counts(total, counts)
            if counts.get("skipped") is True or counts.get("done", True) is True:
                break
            sent = merge_counts(sent, self._phase("c"))  # another chunk may wait: send this one first
            self._beat(None)
        return total, sent

    def _phase(self, phase: str) -> dict[str, object]:
        if phase != "c":
            return run_sql_phase(self._work_conn(), phase)
        total: dict[str, object] = {}
        while True:  # a capped Phase C run that stopped early goes on at once, beating in between
            counts = run_phase_c(self.settings.url, self.sender, self.settings.batch_size, self.settings.max_send)
            problem = run_error(counts)
            if problem:  # under cron the run would exit non-zero; a watcher says so and carries on
                log.error("phase c: %s", problem)
            total = merge_counts(total, counts)
            if counts.get("stopped_early") is not True or self.stopping:
                return total
            self._beat(None)

    # ------------------------------------------------------------------ connection and heartbeat

    def _work_conn(self) -> psycopg.Connection:
        """The work connection, inside a pass: if a heartbeat found it gone, the pass ends as failed."""
        if self.conn is None:
            raise psycopg.OperationalError("the database connection was lost during the pass")
        return self.conn

    def open(self) -> None:
        """The first connection: a failure here is a configuration error and ends the command."""
        self.conn = connect(self.settings.url)
        check_schema(self.conn)
        row = self.conn.execute("SELECT to_regprocedure('alerts_watcher_register(text,text,integer)')").fetchone()
        if row is None or row[0] is None:
            raise AlertsError("watch mode is not deployed (alerts_watcher_register() is missing): run "
                              "`python runner.py --migrate` or `sqitch deploy` first")
        self._register()

    def _connected(self) -> bool:
        """Whether the work connection is up, reconnecting (after the backoff) when it is not."""
        if self.conn is not None:
            return True
        if self.db_outage.wait_seconds() > 0:
            return False
        try:
            self.conn = connect(self.settings.url)  # as the first connection: no prepared statements
            self._register()
        except (AlertsError, psycopg.Error) as error:
            self._lost(error)
            return False
        self.db_outage.recovered()
        return True

    def _register(self) -> None:
        assert self.conn is not None
        row = self.conn.execute("SELECT alerts_watcher_register(%s, %s, %s)",
                                [self.settings.name, socket.gethostname(), os.getpid()]).fetchone()
        self.secret = str(row[0]) if row else ""
        self.beaten_at = time.monotonic()
        if self.listener is not None:  # our own Phase B's notifications need no pass: C follows it
            self.listener.ignore_pids = {self.conn.info.backend_pid}

    def _lost(self, error: BaseException) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.db_outage.failed(error)

    def _beat(self, counts: dict[str, object] | None, error: str | None = None) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute("SELECT alerts_watcher_heartbeat(%s, %s, %s::jsonb, %s)",
                              [self.settings.name, self.secret, None if counts is None else Json(counts), error])
        except psycopg.OperationalError as beat_error:
            self._lost(beat_error)
            return
        except psycopg.Error as beat_error:
            log.error("heartbeat of watcher %s failed: %s", self.settings.name, one_line(beat_error))
            return
        self.beaten_at = time.monotonic()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute("SELECT alerts_watcher_stop(%s, %s)", [self.settings.name, self.secret])
            except psycopg.Error as error:
                log.warning("could not mark watcher %s stopped: %s", self.settings.name, one_line(error))
            self.conn.close()
            self.conn = None


def summary(counts: dict[str, object]) -> str:
    """A phase's counts on one short line: skipped, or its non-zero numbers."""
    if counts.get("skipped") is True:
        return "skipped (lock held elsewhere)"
    numbers = [f"{key}={value}" for key, value in sorted(counts.items())
               if isinstance(value, int) and not isinstance(value, bool) and value]
    return " ".join(numbers) or "nothing to do"


def watch(settings: WatchSettings, sender: Sender, stop_grace_seconds: float) -> dict[str, object]:
    """Run until SIGTERM or SIGINT (alerts.shutdown: in-flight sends finish, outcomes recorded, the
    rest released); returns the final counts, with "stopped_by" naming the signal."""
    watcher = Watcher(settings, sender)
    listener = WakeListener(settings.listen_url)
    STOP.install(stop_grace_seconds)
    log.info("watching %s as %r (listening on %s, full pass every %.0f s)", mask_url(settings.url), settings.name,
             mask_url(settings.listen_url), settings.poll_seconds)
    try:
        watcher.listener = listener
        watcher.open()
        counts = watcher.run(listener)
    finally:
        listener.close()
        watcher.close()
    log.info("watcher %s stopped by %s after %s passes", settings.name, STOP.signal_name, watcher.passes)
    return {**counts, "stopped_by": STOP.signal_name}


def settings_from_env(url: str, batch_size: int, max_send: int, env: dict[str, str] | None = None) -> WatchSettings:
    """ALERTS_LISTEN_URL (default: url; it must be a direct connection, not a transaction pooler),
    ALERTS_WATCH_POLL_SECONDS (default 30), ALERTS_WATCH_FANOUT_EVENTS (default 2),
    ALERTS_WATCH_FIRST_FANOUT_ROWS (default 5,000) and ALERTS_WATCHER_NAME (default: the host name)."""
    env = dict(os.environ) if env is None else env
    listen_url = env.get("ALERTS_LISTEN_URL", "").strip() or url
    raw_poll = env.get("ALERTS_WATCH_POLL_SECONDS", "").strip()
    try:
        poll = float(raw_poll) if raw_poll else DEFAULT_POLL_SECONDS
    except ValueError:
        poll = -1.0
    if not 0.1 <= poll <= 3600:
        raise UsageError(f"ALERTS_WATCH_POLL_SECONDS must be a number of seconds from 0.1 to 3600, got {raw_poll!r}")
    raw_chunk = env.get("ALERTS_WATCH_FANOUT_EVENTS", "").strip()
    if raw_chunk and not (raw_chunk.isdigit() and 1 <= int(raw_chunk) <= 100000):
        raise UsageError(f"ALERTS_WATCH_FANOUT_EVENTS must be a whole number from 1 to 100000, got {raw_chunk!r}")
    fanout_events = int(raw_chunk) if raw_chunk else DEFAULT_FANOUT_EVENTS
    raw_first = env.get("ALERTS_WATCH_FIRST_FANOUT_ROWS", "").strip()
    if raw_first and not (raw_first.isdigit() and 1 <= int(raw_first) <= 10_000_000):
        raise UsageError("ALERTS_WATCH_FIRST_FANOUT_ROWS must be a whole number from 1 to 10000000, "
                         f"got {raw_first!r}")
    first_fanout_rows = int(raw_first) if raw_first else DEFAULT_FIRST_FANOUT_ROWS
    name = env.get("ALERTS_WATCHER_NAME", "").strip() or socket.gethostname()
    if len(name) > 200:
        raise UsageError(f"ALERTS_WATCHER_NAME must be at most 200 characters, got {len(name)}")
    return WatchSettings(url=url, listen_url=listen_url, name=name, poll_seconds=poll, batch_size=batch_size,
                         max_send=max_send, fanout_events=fanout_events, first_fanout_rows=first_fanout_rows)
