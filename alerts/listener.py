"""The watcher's ears: a LISTEN connection on channel alerts_v2_wake that survives outages.

Notifications are best-effort: they are lost while the connection is down, and PostgreSQL
drops them if a listener falls far behind. So every (re)connection reports a "reconnect"
wake-up, after which the watcher runs a full pass as if it had been told about everything.
"""

import logging
import time
from dataclasses import dataclass, field

import psycopg

from alerts.db import one_line
from alerts.secrets import mask_url

log = logging.getLogger("alerts")

CHANNEL = "alerts_v2_wake"
RECONNECT = "reconnect"
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0


@dataclass
class Outage:
    """One log line when a connection is lost and one when it is back, not one per attempt;
    the delay before the next attempt doubles up to BACKOFF_MAX_SECONDS."""

    what: str
    since: float | None = None
    delay: float = BACKOFF_FIRST_SECONDS
    next_try: float = 0.0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.warning("%s lost: %s; retrying with backoff up to %.0f s", self.what, one_line(error),
                        BACKOFF_MAX_SECONDS)
        else:
            self.delay = min(self.delay * 2, BACKOFF_MAX_SECONDS)
        self.next_try = now + self.delay

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("%s back after %.1f s", self.what, time.monotonic() - self.since)
        self.since, self.delay, self.next_try = None, BACKOFF_FIRST_SECONDS, 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def wait_seconds(self) -> float:
        return max(0.0, self.next_try - time.monotonic())


@dataclass
class WakeListener:
    """wait(timeout) returns the payloads that arrived ('source', 'deliveries', or 'reconnect'
    after a (re)connection), all pending ones at once, or an empty set when the timeout passed."""

    url: str
    ignore_pids: set[int] = field(default_factory=set)
    conn: psycopg.Connection | None = None
    outage: Outage = field(init=False)

    def __post_init__(self) -> None:
        self.outage = Outage(f"listen connection to {mask_url(self.url)}")

    def wait(self, timeout: float) -> set[str]:
        if self.conn is None:
            if self.outage.wait_seconds() > 0:
                time.sleep(min(timeout, self.outage.wait_seconds()))
                return set()
            return self._connect()
        try:
            woken = self._drain(timeout)
        except psycopg.Error as error:
            self._drop(error)
            return set()
        return woken

    def _drain(self, timeout: float) -> set[str]:
        """Block until the first notification (or the timeout), then take every pending one."""
        assert self.conn is not None
        arrived = list(self.conn.notifies(timeout=timeout, stop_after=1))
        if arrived:
            arrived += self.conn.notifies(timeout=0)
        # the watcher's own 'deliveries' (its Phase B just made them) are not news to it
        return {n.payload for n in arrived if n.pid not in self.ignore_pids or n.payload != "deliveries"}

    def _connect(self) -> set[str]:
        try:
            # Keepalives: a server that vanishes without closing the socket is noticed within a minute.
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                        application_name="alerts_v2_watch_listen", keepalives_idle=30,
                                        keepalives_interval=10, keepalives_count=3)
            self.conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            self._drop(error)
            return set()
        self.outage.recovered()
        return {RECONNECT}

    def _drop(self, error: BaseException) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.outage.failed(error)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
