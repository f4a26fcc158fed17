"""Keeps one channel within its limits while many threads send on it.

Two steps per message. reserve() hands out the moment a message may start as far as its
destination (never sooner than the destination's own interval, a little wider, after its
previous message) and the per-minute limit allow (beyond that the channel waits until a minute
has passed since the oldest of them). pass_gate(), called at the moment of sending, lets one
message through at a time at the channel's steady rate, counting the next turn from the moment
the previous message actually left: a thread that wakes late delays the ones after it instead
of letting them bunch, so what the provider receives stays under the rate over any one-second
window. slow_down() halves the rate for the rest of the run, when a provider answered "too many
requests".

Across processes the rate and the destinations' intervals are kept by send slots reserved in
the database (a SlotSource: alerts.send_slots); the router then asks reserve() only for the
per-minute limit (reserve(None)), which stays per process, and keeps pass_gate() on top of the
slots, so a slot reached late still never lets the next message of this process go early.
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from alerts.senders.limits import ChannelLimits

SPACING_MARGIN = 0.04  # starts 4 % further apart than 1/rate: the rate is met within 4 %, never exceeded
MIN_RATE = 1 / 60  # slowing down never goes below one message a minute


@dataclass(frozen=True)
class Slot:
    """A send slot: at, a time.monotonic() value; reserved False: none was reserved (the destination
    is still within its interval, or the channel is booked far ahead), ask again at that time."""

    at: float
    reserved: bool


class SlotsUnavailable(Exception):
    """The shared send slots could not be reserved (the database did not answer)."""

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        super().__init__(f"could not reserve {channel} send slots in the database: {reason}")


class SlotSource(Protocol):
    """Send slots shared by every sender process (alerts.send_slots.DatabaseSlots)."""

    def reserve(self, channel: str, destination: str, per_second: float | None,
                per_destination_interval: float) -> Slot: ...


class Pacer:
    def __init__(self, limits: ChannelLimits, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._gate = threading.Lock()  # held by the one message waiting for the channel's next turn
        self._rate = limits.per_second
        self._per_minute = limits.per_minute
        self._destination_interval = limits.per_destination_interval
        self._next_start = 0.0
        self._next_by_destination: dict[str, float] = {}
        self._minute: deque[float] = deque()
        self._second: deque[float] = deque()  # starts in the last second, to slow an unpaced channel

    @property
    def per_second(self) -> float | None:
        return self._rate

    @property
    def destination_interval(self) -> float:
        return self._destination_interval

    @property
    def paced(self) -> bool:
        """Whether the channel has a rate (configured, or since a slow-down) or a per-destination interval."""
        return bool(self._rate or self._destination_interval)

    def reserve(self, destination: str | None) -> float | None:
        """The monotonic time this message may start at, reserved; None when the per-minute limit
        is used up (for minute_wait() seconds). destination None: the destination's interval is
        kept elsewhere (shared send slots), only the per-minute limit counts here."""
        with self._lock:
            now = self._clock()
            if not self._minute_has_room(now):
                return None
            if destination is None:
                self._note_start(now)
                return now
            start = max(now, self._next_by_destination.get(destination, 0.0))
            if self._destination_interval:
                self._next_by_destination[destination] = start + self._destination_interval * (1 + SPACING_MARGIN)
                if len(self._next_by_destination) > 10_000:
                    self._forget_destinations(now)
            self._note_start(start)
            return start

    def pass_gate(self) -> float:
        """Block until the channel's next turn, then take it; returns the moment it was taken.
        Turns are 1/rate apart (a little wider), counted from when each was actually taken."""
        with self._gate:
            wait = self._next_start - self._clock()
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                now = self._clock()
                if self._rate:
                    self._next_start = now + (1 + SPACING_MARGIN) / self._rate
                return now

    def minute_wait(self) -> float:
        """Seconds until the per-minute limit admits another message (0 when it does now)."""
        with self._lock:
            now = self._clock()
            return 0.0 if self._minute_has_room(now) else self._minute[0] + 60 - now

    def slow_down(self) -> float:
        """Halve the rate (an unpaced channel: half what it sent in the last second) for the rest
        of the run; returns the new rate."""
        with self._lock:
            now = self._clock()
            while self._second and self._second[0] <= now - 1:
                self._second.popleft()
            current = self._rate if self._rate else max(len(self._second), 1)
            self._rate = max(current / 2, MIN_RATE)
            return self._rate

    def _minute_has_room(self, now: float) -> bool:
        if self._per_minute is None:
            return True
        while self._minute and self._minute[0] <= now - 60:
            self._minute.popleft()
        return len(self._minute) < self._per_minute

    def _note_start(self, start: float) -> None:
        if self._per_minute is not None:
            self._minute.append(start)
        if not self._rate:
            self._second.append(start)
            while self._second[0] <= start - 1:
                self._second.popleft()

    def _forget_destinations(self, now: float) -> None:
        self._next_by_destination = {d: t for d, t in self._next_by_destination.items() if t > now}
