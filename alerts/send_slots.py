"""Send slots shared by every sender process, reserved in the database.

A provider's limits hold per bot or account (Telegram: 30 messages/s per bot, one a second per
chat; Twilio: one SMS a second per number), however many runners send: two `--phase c`
processes pacing themselves alone would send Telegram at 60/s. So a paced channel's sending
threads take their start times from alerts_reserve_send_slots(), which hands them out under
the channel's row lock to whichever process asks (db/functions/reserve_send_slots.sql).

One connection per run, opened when a paced channel first sends (the file outbox and unpaced
channels never open it). Threads that ask while a round trip is under way are served together
by the next one: the first of them to get the connection reserves for every message waiting,
so a round trip serves a group and the rate is never bounded by round trips. Slots come back as
seconds to wait from the server's clock when they were reserved; they are counted from when
the answer arrived, so a slot is never taken early whatever the hosts' clocks say (late by at
most the round trip, which the channel's local gate absorbs: alerts.senders.pacing).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from alerts.db import one_line
from alerts.delivery import Database
from alerts.errors import AlertsError
from alerts.senders.pacing import Slot, SlotsUnavailable

log = logging.getLogger("alerts")

RESERVE = ("SELECT slot, wait_seconds, reserved FROM alerts_reserve_send_slots(%s, %s, %s, %s) ORDER BY slot")


@dataclass
class _Request:
    channel: str
    destination: str
    per_second: float | None
    per_destination_interval: float
    done: threading.Event = field(default_factory=threading.Event)
    slot: Slot | None = None
    error: str | None = None

    @property
    def group(self) -> tuple[str, float | None, float]:
        return self.channel, self.per_second, self.per_destination_interval


class DatabaseSlots:
    """Reserves send slots with alerts_reserve_send_slots(), one round trip per group of waiting
    messages; safe to call from many threads. round_trips counts the calls made."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._clock = clock
        self._db: Database | None = None
        self._waiting: list[_Request] = []
        self._waiting_lock = threading.Lock()
        self._trip = threading.Lock()  # held by the thread making the round trip
        self._closed = False
        self.round_trips = 0

    def reserve(self, channel: str, destination: str, per_second: float | None,
                per_destination_interval: float) -> Slot:
        """A slot for one message (blocks for the round trip); SlotsUnavailable when the database
        could not reserve one."""
        request = _Request(channel, destination, per_second, per_destination_interval)
        with self._waiting_lock:
            self._waiting.append(request)
        with self._trip:
            if not request.done.is_set():
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._serve(group)
        if request.slot is None:
            raise SlotsUnavailable(channel, request.error or "no slot")
        return request.slot

    def close(self) -> None:
        """Close the connection; a reservation asked for afterwards fails (SlotsUnavailable)."""
        with self._trip:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None

    def _serve(self, requests: list[_Request]) -> None:
        """One call per (channel, rate, interval) among the waiting requests (almost always one)."""
        groups: dict[tuple[str, float | None, float], list[_Request]] = {}
        for request in requests:
            groups.setdefault(request.group, []).append(request)
        for (channel, per_second, interval), members in groups.items():
            try:
                rows = self._call([channel, [m.destination for m in members], per_second, interval])
                arrived = self._clock()
                for member, (_, wait, reserved) in zip(members, rows, strict=True):
                    member.slot = Slot(arrived + float(wait), bool(reserved))
            except (psycopg.Error, AlertsError, ValueError) as error:
                reason = one_line(error)
                log.error("could not reserve %s send slots in the database: %s", channel, reason)
                for member in members:
                    member.error = reason
            finally:
                for member in members:
                    member.done.set()

    def _call(self, params: list) -> list[tuple]:
        """The reservation on the run's own connection (alerts.delivery.Database: a connection the
        server closed is replaced once; a repeated reservation only leaves a gap in the slots)."""
        if self._closed:
            raise AlertsError("the run has ended")
        if self._db is None:
            self._db = Database(self._url)
        self.round_trips += 1
        return [(r["slot"], r["wait_seconds"], r["reserved"]) for r in self._db.rows(RESERVE, params)]
