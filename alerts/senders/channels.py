"""The real providers behind one Sender: one provider per channel, chosen from the environment.

    email     SMTP when SMTP_URL is set, else Brevo when BREVO_API_KEY is set (this module
              is the only place that makes that choice)
    telegram  TELEGRAM_BOT_TOKEN
    sms       TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN + TWILIO_FROM

ChannelRouter.send() dispatches on message.channel and may be called from many threads at
once. Each channel has its limits (alerts.senders.limits) and a Pacer that hands out start
times (turn()). Once Phase C shares send slots with the router (share_send_slots(), for the
run), a channel with a rate or a per-destination interval takes its start times from the
slots reserved in the database, so the limits hold across every sender process and host; a
message whose destination is still within its interval gets TurnNotYet, to ask again later.
A 429's slow-down and hold, and the per-minute limits, stay per process.
When a provider asks us to wait (Telegram's retry_after, a 429's Retry-After)
or could not be reached, the router holds that channel for that long, so a flood-controlled
bot is not pushed further and an unreachable server does not cost one timeout per message;
a 429 also halves the channel's rate for the rest of the run.

Whenever turn() or send() attempts nothing it raises ChannelUnavailable: ChannelNotConfigured
for a channel with no sender, ChannelHeld for a held one. The runner should release such a row
(give its attempt back) rather than count a failure; available_channels() tells it beforehand
which channels are worth claiming now.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping

from alerts import metrics
from alerts.render import OutgoingMessage
from alerts.senders import brevo_email, smtp_email, telegram, twilio_sms
from alerts.senders.base import Outcome, Sender, SendResult
from alerts.senders.http_common import DEFAULT_POOL
from alerts.senders.limits import CHANNEL_NAMES, DEFAULT_LIMITS, ChannelLimits, limits_from_env
from alerts.senders.pacing import Pacer, SlotSource, SlotsUnavailable
from alerts.senders.provider import UNREACHABLE_COOLDOWN

log = logging.getLogger("alerts.senders.channels")

CHANNELS = CHANNEL_NAMES
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


class TurnNotYet(Exception):
    """No send slot yet for this message (its destination is still within its interval, or the
    channel's shared slots are booked as far ahead as they may be): ask turn() again at `at` (a
    time.monotonic() value). Nothing was reserved."""

    def __init__(self, channel: str, at: float) -> None:
        self.channel = channel
        self.at = at
        super().__init__(f"{channel}: ask again in {max(at - time.monotonic(), 0.0):.2f}s")


class ChannelRouter:
    """A Sender that hands each message to the provider of its channel, within the channel's limits."""

    name = "channels"

    def __init__(self, senders: Mapping[str, Sender], clock: Callable[[], float] = time.monotonic,
                 limits: Mapping[str, ChannelLimits] | None = None) -> None:
        self._senders = dict(senders)
        self._clock = clock
        self._limits = {channel: (limits or {}).get(channel, DEFAULT_LIMITS.get(channel, ChannelLimits(1)))
                        for channel in self._senders}
        self._pacers = {channel: Pacer(self._limits[channel], clock) for channel in self._senders}
        self._held_until: dict[str, float] = {}
        self._slots: SlotSource | None = None
        self._lock = threading.Lock()
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

    def max_in_flight(self, channel: str | None) -> int:
        if channel is None:
            return sum(limits.concurrency for limits in self._limits.values())
        return self._limits[channel].concurrency if channel in self._limits else 1

    def per_second(self, channel: str | None) -> float | None:
        pacer = self._pacers.get(channel or "")
        return pacer.per_second if pacer else None

    def held_for(self, channel: str) -> float:
        """Seconds the channel is still held by its provider or its per-minute limit (0 when it is not)."""
        pacer = self._pacers.get(channel)
        return max(self._provider_hold(channel), pacer.minute_wait() if pacer else 0.0)

    def _provider_hold(self, channel: str) -> float:
        with self._lock:
            return max(self._held_until.get(channel, 0.0) - self._clock(), 0.0)

    def hold(self, channel: str, seconds: float) -> None:
        with self._lock:
            self._held_until[channel] = max(self._held_until.get(channel, 0.0), self._clock() + seconds)
        metrics.channel_held(channel)

    def sender_for(self, channel: str) -> Sender | None:
        return self._senders.get(channel)

    def _provider(self, channel: str) -> Sender:
        """The channel's provider, unless it has none or asked us to wait."""
        sender = self._senders.get(channel)
        if sender is None:
            raise ChannelNotConfigured(channel)
        held = self._provider_hold(channel)
        if held > 0:
            raise ChannelHeld(channel, sender.name, held)
        return sender

    def share_send_slots(self, slots: SlotSource | None) -> None:
        """From now on take the paced channels' start times from slots shared by every sender process
        (None: this process paces alone again)."""
        self._slots = slots

    def turn(self, channel: str, destination: str) -> float:
        """Reserve the moment a message to destination may start; ChannelUnavailable when it may not
        (held by its provider, the per-minute limit used up, no shared slot to be had), TurnNotYet
        when it is too early to reserve one (its destination is still within its interval)."""
        sender = self._provider(channel)
        pacer = self._pacers[channel]
        if self._slots is None or not pacer.paced:
            start = pacer.reserve(destination)
            if start is None:
                raise ChannelHeld(channel, sender.name, pacer.minute_wait())
            return start
        if pacer.minute_wait() > 0:  # before a slot is reserved that would go unused
            raise ChannelHeld(channel, sender.name, pacer.minute_wait())
        try:
            slot = self._slots.reserve(channel, destination, pacer.per_second, pacer.destination_interval)
        except SlotsUnavailable as error:
            self.hold(channel, UNREACHABLE_COOLDOWN)
            with self._lock:
                self.provider_holds[channel] = str(error)
            raise ChannelUnavailable(channel, str(error)) from None
        if not slot.reserved:
            raise TurnNotYet(channel, slot.at)
        start = pacer.reserve(None)  # the per-minute limit, per process
        if start is None:
            raise ChannelHeld(channel, sender.name, pacer.minute_wait())
        return max(start, slot.at)

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send now (call turn() first to keep the pace); ChannelUnavailable when the channel has
        no provider or is held, for instance because another message of it was just throttled.
        The channel's gate is passed here, also on top of a shared slot: a slot reached late
        never lets this process's next message go out right behind it."""
        self._provider(message.channel)
        self._pacers[message.channel].pass_gate()
        sender = self._provider(message.channel)  # held while this message waited for its turn?
        result = sender.send(message)
        if result.outcome is Outcome.TRANSIENT and result.retry_after:
            self.hold(message.channel, result.retry_after)
            with self._lock:
                self.provider_holds[message.channel] = result.error or f"{sender.name} asked us to wait"
        if result.throttled:
            rate = self._pacers[message.channel].slow_down()
            log.warning("%s answered 'too many requests': %s slows down to %.2f messages/s for the rest of the run",
                        sender.name, message.channel, rate)
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


def email_from_env(env: Mapping[str, str], connections: int = DEFAULT_POOL) -> Sender | None:
    """SMTP when SMTP_URL is set, else Brevo when BREVO_API_KEY is set, else None."""
    smtp = smtp_email.parse_config(env)
    if smtp is not None:
        return smtp_email.SmtpEmailSender(smtp)
    brevo = brevo_email.parse_config(env)
    return brevo_email.BrevoEmailSender(brevo, connections=connections) if brevo is not None else None


def senders_from_env(env: Mapping[str, str], limits: Mapping[str, ChannelLimits] | None = None) -> dict[str, Sender]:
    """The configured senders by channel, each with a connection pool as large as the channel's
    concurrency; UsageError when a provider's settings are malformed."""
    limits = limits or limits_from_env(env)
    bot, sms = telegram.parse_config(env), twilio_sms.parse_config(env)
    candidates: dict[str, Sender | None] = {
        "email": email_from_env(env, limits["email"].concurrency),
        "telegram": telegram.TelegramSender(bot, connections=limits["telegram"].concurrency) if bot else None,
        "sms": twilio_sms.TwilioSmsSender(sms, connections=limits["sms"].concurrency) if sms else None,
    }
    return {channel: sender for channel, sender in candidates.items() if sender is not None}


def from_env(env: Mapping[str, str]) -> ChannelRouter | None:
    """A router over every configured provider; None when no provider is configured."""
    limits = limits_from_env(env)
    senders = senders_from_env(env, limits)
    return ChannelRouter(senders, limits=limits) if senders else None


def check_config(env: Mapping[str, str]) -> dict[str, str]:
    """Validate every provider's settings without creating a client or contacting anything.
    Returns a one-line masked description per channel ("not configured: ..." when absent);
    raises UsageError for the first malformed setting."""
    smtp = smtp_email.check_config(env)
    brevo = brevo_email.check_config(env)
    email = smtp or brevo
    if smtp and brevo:
        email = f"{smtp} (BREVO_API_KEY is ignored while SMTP_URL is set)"
    limits_from_env(env)  # malformed limits fail the preflight too
    found = {"email": email, "telegram": telegram.check_config(env), "sms": twilio_sms.check_config(env)}
    return {channel: found[channel] or f"not configured: {HOW_TO_CONFIGURE[channel]}" for channel in CHANNELS}
