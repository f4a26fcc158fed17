"""Chooses the sender named by ALERTS_SENDER."""

from pathlib import Path

from alerts.errors import UsageError
from alerts.senders.base import Sender
from alerts.senders.console import ConsoleSender
from alerts.senders.file_outbox import FileOutboxSender


def build_sender(spec: str | None) -> Sender:
    """file:/path/outbox.jsonl or console; anything else is a usage error."""
    if not spec:
        raise UsageError(
            "ALERTS_SENDER is not set and no real provider is configured yet: "
            "set ALERTS_SENDER=file:/path/outbox.jsonl or ALERTS_SENDER=console"
        )
    if spec == "console":
        return ConsoleSender()
    if spec.startswith("file:") and len(spec) > len("file:"):
        path = Path(spec[len("file:"):])
        try:
            return FileOutboxSender(path)
        except OSError as error:
            raise UsageError(f"ALERTS_SENDER: cannot open outbox {path}: {error.strerror}") from None
    raise UsageError(
        f"ALERTS_SENDER={spec!r} is not understood: use file:/path/outbox.jsonl or console"
    )
