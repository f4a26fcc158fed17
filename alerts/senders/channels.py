"""The real providers behind one Sender: one sender per channel, chosen from the environment.

    email     SMTP when SMTP_URL is set, else Brevo when BREVO_API_KEY is set (this module
              is the only place that makes that choice)
    telegram  TELEGRAM_BOT_TOKEN
    sms       TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN + TWILIO_FROM

ChannelRouter.send() dispatches on message.channel. When a provider asks us to wait
(Telegram's retry_after, a 429's Retry-After) or could not be reached, the router holds
that channel for that long, so a flood-controlled bot is not pushed further and an
unreachable server does not cost one timeout per message.

Whenever send() attempts nothing it raises ChannelUnavailable: ChannelNotConfigured for a
channel with no sender, ChannelHeld for a held one. The runner should release such a row
(give its attempt back) rather than count a failure; available_channels() tells it
beforehand which channels are worth claiming now.
"""

import time
from collections import deque
from collections.abc import Callable, Mapping

from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.senders import brevo_email, smtp_email, telegram, twilio_sms
from alerts.senders.base import Outcome, Sender, SendResult

CHANNELS = ("email", "telegram", "sms")
HOW_TO_CONFIGURE = {
    "email": "set SMTP_URL (or BREVO_API_KEY) and EMAIL_FROM",
    "telegram": "set TELEGRAM_BOT_TOKEN",
    "sms": "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM",
}


class ChannelUnavailable(Exception):
    """send() attempted nothing for this message: release the row, do not count an attempt."""

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        super().__init__(reason)


class ChannelNotConfigured(ChannelUnavailable):
    """The message's channel has no sender."""

    def __init__(self, channel: str) -> None:
        hint = HOW_TO_CONFIGURE.get(channel, f"known channels are {', '.join(CHANNELS)}")
        super().__init__(channel, f"no sender is configured for channel {channel!r}: {hint}")


class ChannelHeld(ChannelUnavailable):
    """The channel's provider asked us to wait (or was unreachable); retry_after seconds are left."""

    def __init__(self, channel: str, sender_name: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(channel, f"{channel} held: {sender_name} asked us to wait, {retry_after:.0f}s left")


class ChannelRouter:
    """A Sender that hands each message to the sender of its channel."""

    name = "channels"

    def __init__(self, senders: Mapping[str, Sender], clock: Callable[[], float] = time.monotonic,
                 per_minute: Mapping[str, int] | None = None) -> None:
        self._senders = dict(senders)
        self._clock = clock
        self._held_until: dict[str, float] = {}
        self._per_minute = dict(per_minute or {})
        self._recent: dict[str, deque[float]] = {channel: deque() for channel in self._per_minute}
        self.retry_after: float | None = None  # after send(): seconds the message's channel is held
        # channels their provider held (asked us to wait, or could not be reached), with its answer
        self.provider_holds: dict[str, str] = {}

    def __repr__(self) -> str:
        routes = ", ".join(f"{channel}={sender.name}" for channel, sender in self._senders.items())
        return f"ChannelRouter({routes})"

    def configured_channels(self) -> frozenset[str]:
        return frozenset(self._senders)

    def available_channels(self) -> frozenset[str]:
        """The configured channels not held right now: the ones worth claiming."""
        return frozenset(c for c in self._senders if self.held_for(c) <= 0)

    def held_for(self, channel: str) -> float:
        """Seconds the channel is still held (0 when it is not)."""
        return max(self._held_until.get(channel, 0.0) - self._clock(), 0.0)

    def _rate_limited_for(self, channel: str) -> float:
        """Seconds until the channel's per-minute limit admits another message; holds the channel meanwhile."""
        limit = self._per_minute.get(channel)
        if limit is None:
            return 0.0
        recent, now = self._recent[channel], self._clock()
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if len(recent) < limit:
            return 0.0
        wait = recent[0] + 60 - now
        self._held_until[channel] = now + wait
        return wait

    def sender_for(self, channel: str) -> Sender | None:
        return self._senders.get(channel)

    def send(self, message: OutgoingMessage) -> SendResult:
        sender = self._senders.get(message.channel)
        if sender is None:
            raise ChannelNotConfigured(message.channel)
        held = self.held_for(message.channel) or self._rate_limited_for(message.channel)
        if held > 0:
            self.retry_after = held
            raise ChannelHeld(message.channel, sender.name, held)
        if message.channel in self._recent:
            self._recent[message.channel].append(self._clock())
        result = sender.send(message)
        wait = getattr(sender, "retry_after", None)
        self.retry_after = wait if result.outcome is Outcome.TRANSIENT and wait else None
        if self.retry_after:
            self._held_until[message.channel] = self._clock() + self.retry_after
            self.provider_holds[message.channel] = result.error or f"{sender.name} asked us to wait"
        return result

    def flush(self) -> None:
        """Flush every sender; if any fails, the first error is raised after all were tried."""
        self._each("flush")

    def close(self) -> None:
        self._each("close")

    def _each(self, method: str) -> None:
        first_error: Exception | None = None
        for sender in self._senders.values():
            try:
                getattr(sender, method)()
            except Exception as error:  # every sender gets its turn
                first_error = first_error or error
        if first_error is not None:
            raise first_error


def email_from_env(env: Mapping[str, str]) -> Sender | None:
    """SMTP when SMTP_URL is set, else Brevo when BREVO_API_KEY is set, else None."""
    return smtp_email.from_env(env) or brevo_email.from_env(env)


def senders_from_env(env: Mapping[str, str]) -> dict[str, Sender]:
    """The configured senders by channel; UsageError when a provider's settings are malformed.
    Every provider's settings are validated before any client is created."""
    check_config(env)
    candidates: dict[str, Sender | None] = {
        "email": email_from_env(env),
        "telegram": telegram.from_env(env),
        "sms": twilio_sms.from_env(env),
    }
    return {channel: sender for channel, sender in candidates.items() if sender is not None}


def rate_limits_from_env(env: Mapping[str, str]) -> dict[str, int]:
    """ALERTS_RATE_LIMIT_EMAIL_PER_MINUTE (and _TELEGRAM_, _SMS_): optional messages per minute per channel."""
    limits = {}
    for channel in CHANNELS:
        name = f"ALERTS_RATE_LIMIT_{channel.upper()}_PER_MINUTE"
        raw = env.get(name, "").strip()
        if not raw:
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise UsageError(f"{name} must be a positive integer (messages per minute), got {raw!r}")
        limits[channel] = int(raw)
    return limits


def from_env(env: Mapping[str, str]) -> ChannelRouter | None:
    """A router over every configured provider; None when no provider is configured."""
    senders = senders_from_env(env)
    return ChannelRouter(senders, per_minute=rate_limits_from_env(env)) if senders else None


def check_config(env: Mapping[str, str]) -> dict[str, str]:
    """Validate every provider's settings without creating a client or contacting anything.
    Returns a one-line masked description per channel ("not configured: ..." when absent);
    raises UsageError for the first malformed setting."""
    smtp = smtp_email.check_config(env)
    brevo = brevo_email.check_config(env)
    email = smtp or brevo
    if smtp and brevo:
        email = f"{smtp} (BREVO_API_KEY is ignored while SMTP_URL is set)"
    found = {"email": email, "telegram": telegram.check_config(env), "sms": twilio_sms.check_config(env)}
    return {channel: found[channel] or f"not configured: {HOW_TO_CONFIGURE[channel]}" for channel in CHANNELS}
