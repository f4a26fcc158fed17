"""ALERTS_SENDER=console: prints each message to stderr, for trying things out."""

import sys

from alerts.render import OutgoingMessage
from alerts.senders.base import LocalSender, SendResult


class ConsoleSender(LocalSender):
    name = "console"

    def send(self, message: OutgoingMessage) -> SendResult:
        subject = f"Subject: {message.subject}\n" if message.subject else ""
        print(f"--- {message.kind} {message.delivery_id} via {message.channel} to {message.destination}\n"
              f"{subject}{message.body}", file=sys.stderr)
        return SendResult.sent(f"console:{message.delivery_id}:{message.attempt}")

    def flush(self) -> None:
        sys.stderr.flush()

