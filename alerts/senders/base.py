"""The one interface every sender implements, the outcomes it reports, and the defaults of a
sender that serves every channel from this machine (the file outbox, the console)."""

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from alerts.render import OutgoingMessage
from alerts.senders.pacing import SlotSource


class Outcome(Enum):
    SENT = "sent"
    TRANSIENT = "transient"  # worth retrying: the row goes back to the queue
    PERMANENT = "permanent"  # never worth retrying: the row becomes failed


@dataclass(frozen=True)
class SendResult:
    """What one send() came to. retry_after: seconds the provider asked us (or its silence tells
    us) to leave the channel alone; throttled: the provider said we sent too fast (HTTP 429);
    suppress: the provider said the destination itself is gone for good (no such mailbox, bot
    blocked, chat not found, STOP, not a mobile number), with that answer: later deliveries to it
    are skipped (alerts_suppressions). Never set for an answer about the message or the provider."""

    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    throttled: bool = False
    suppress: str | None = None

    @classmethod
    def sent(cls, provider_message_id: str) -> "SendResult":
        return cls(Outcome.SENT, provider_message_id=provider_message_id)

    @classmethod
    def transient(cls, error: str, retry_after: float | None = None, throttled: bool = False) -> "SendResult":
        return cls(Outcome.TRANSIENT, error=error, retry_after=retry_after, throttled=throttled)

    @classmethod
    def permanent(cls, error: str, suppress: bool = False) -> "SendResult":
        """A failure never worth retrying; suppress: the answer was about the destination itself."""
        return cls(Outcome.PERMANENT, error=error, suppress=error if suppress else None)


class Sender(Protocol):
    """Delivers messages; everything Phase C's loop asks of a sender.

    configured_channels()  the channels it has a provider for; None: every channel
    available_channels()   the configured channels worth claiming now (not held); None: every channel
    held_for(channel)      seconds the channel is still held (its provider asked us to wait); 0 when not
    provider_holds         the channels a provider held this run, with its answer (for the run's report)
    max_in_flight(channel) how many messages of that channel may be sent at once (1: one at a time,
                           on the caller's thread; more: send() is called from that many threads)
    per_second(channel)    the channel's steady rate now (after any slow-down), None when unpaced;
                           Phase C sizes its claims from it so a claim is sent well within its lease
    turn(channel, destination)  reserve the next moment a message to destination may go (a
                           time.monotonic() value); raises ChannelUnavailable when the channel is held,
                           TurnNotYet (alerts.senders.channels) to be asked again later
    share_send_slots(slots)  take paced channels' start times from send slots shared by every sender
                           process (alerts.send_slots), None: pace alone; Phase C sets it for its run
    send(message)          hand one message to the provider; may buffer
    flush()                make what was sent durable; raises if it could not, before anything is
                           recorded as sent
    close()                release connections
    """

    name: str

    def configured_channels(self) -> frozenset[str] | None: ...

    def available_channels(self) -> frozenset[str] | None: ...

    def held_for(self, channel: str) -> float: ...

    @property
    def provider_holds(self) -> dict[str, str]: ...

    def max_in_flight(self, channel: str | None) -> int: ...

    def per_second(self, channel: str | None) -> float | None: ...

    def turn(self, channel: str, destination: str) -> float: ...

    def share_send_slots(self, slots: SlotSource | None) -> None: ...

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class LocalSender:
    """Defaults for a sender that serves every channel itself, one message at a time, unpaced."""

    name = "local"

    def configured_channels(self) -> frozenset[str] | None:
        return None

    def available_channels(self) -> frozenset[str] | None:
        return None

    def held_for(self, channel: str) -> float:
        return 0.0

    @property
    def provider_holds(self) -> dict[str, str]:
        return {}

    def max_in_flight(self, channel: str | None) -> int:
        return 1

    def per_second(self, channel: str | None) -> float | None:
        return None

    def turn(self, channel: str, destination: str) -> float:
        return 0.0

    def share_send_slots(self, slots: SlotSource | None) -> None:
        pass  # one message at a time, unpaced: nothing to share

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
