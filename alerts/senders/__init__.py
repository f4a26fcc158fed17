"""Chooses the sender: ALERTS_SENDER=file:/path or console, else the real providers."""

import os
from collections.abc import Mapping
from pathlib import Path

from alerts.errors import UsageError
from alerts.senders import channels
from alerts.senders.base import Sender
from alerts.senders.console import ConsoleSender
from alerts.senders.file_outbox import FileOutboxSender

NO_PROVIDER = (
    "no provider is configured: set SMTP_URL (or BREVO_API_KEY) with EMAIL_FROM, TELEGRAM_BOT_TOKEN, "
    "or TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM; or ALERTS_SENDER=file:/path/outbox.jsonl"
)


def build_sender(spec: str | None, env: Mapping[str, str] = os.environ) -> Sender:
    """file:/path/outbox.jsonl, console, or (unset) one real provider per configured channel."""
    if not spec:
        router = channels.from_env(env)
        if router is None:
            raise UsageError(NO_PROVIDER)
        return router
    if spec == "console":
        return ConsoleSender()
    if spec.startswith("file:") and len(spec) > len("file:"):
        path = Path(spec[len("file:"):])
        try:
            return FileOutboxSender(path)
        except OSError as error:
            raise UsageError(f"ALERTS_SENDER: cannot open outbox {path}: {error.strerror}") from None
    raise UsageError(f"ALERTS_SENDER={spec!r} is not understood: use file:/path/outbox.jsonl or console, "
                     "or leave it unset for the real providers")
