"""The one interface every sender implements, and the outcomes it reports."""

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from alerts.render import OutgoingMessage


class Outcome(Enum):
    SENT = "sent"
    TRANSIENT = "transient"  # worth retrying: the row goes back to the queue
    PERMANENT = "permanent"  # never worth retrying: the row becomes failed


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None

    @classmethod
    def sent(cls, provider_message_id: str) -> "SendResult":
        return cls(Outcome.SENT, provider_message_id=provider_message_id)

    @classmethod
    def transient(cls, error: str) -> "SendResult":
        return cls(Outcome.TRANSIENT, error=error)

    @classmethod
    def permanent(cls, error: str) -> "SendResult":
        return cls(Outcome.PERMANENT, error=error)


class Sender(Protocol):
    """Delivers messages. send() may buffer; flush() makes what was sent durable
    and raises if it could not, before the runner records anything as sent."""

    name: str

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
