"""Graceful stop for a run: the first SIGTERM or SIGINT asks the run to stop handing messages to
providers; what is in flight finishes, every outcome is recorded, rows never handed to a
provider are released, and the runner exits with EXIT_STOPPED. A second signal, or the grace
period running out, stops at once (HardStop): a message whose fate is unknown then stays
'sending' and its lease brings it back, never released as unsent."""

import logging
import signal
from types import FrameType

log = logging.getLogger("alerts")

DEFAULT_GRACE_SECONDS = 30.0


class HardStop(KeyboardInterrupt):
    """A second signal, or the grace period after the first one ran out."""


class StopSignal:
    """Set by the first SIGTERM/SIGINT; checked by the loops before each new piece of work."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._grace = DEFAULT_GRACE_SECONDS

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def install(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self._grace = grace_seconds
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_grace_over)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            raise HardStop(f"second signal ({name}): stopped at once")
        self.signal_name = name
        log.warning("%s received: finishing the messages in flight (at most %.0f s), then stopping; "
                    "a second signal stops at once", name, self._grace)
        signal.setitimer(signal.ITIMER_REAL, self._grace)

    def _on_grace_over(self, signum: int, frame: FrameType | None) -> None:
        raise HardStop(f"the {self._grace:.0f} s grace period after {self.signal_name} ran out: stopped at once")


STOP = StopSignal()
