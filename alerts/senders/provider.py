"""What every real provider shares (SMTP, Brevo, Telegram, Twilio): the destination check, the
masking and logging of a failure, the pause after an unreachable provider, and the from_env /
check_config pair built from a module's parse_config. A provider module keeps only its request
and how it classifies an answer."""

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from alerts import metrics
from alerts.destinations import destination_problem
from alerts.render import OutgoingMessage
from alerts.secrets import mask_text
from alerts.senders.base import Outcome, SendResult

DEFAULT_TIMEOUT = 15.0
UNREACHABLE_COOLDOWN = 30.0  # seconds the channel is left alone after its provider could not be reached


class ProviderConfig(Protocol):
    def describe(self) -> str: ...


ConfigT = TypeVar("ConfigT", bound=ProviderConfig)
SenderT = TypeVar("SenderT")


class Provider:
    """One channel's real provider. Subclasses set name, channel and secret, and implement transmit();
    send() may be called from several threads at once."""

    name = "provider"
    channel = ""
    secret: str | None = None  # masked in every error and log line

    def send(self, message: OutgoingMessage) -> SendResult:
        problem = destination_problem(self.channel, message.destination)
        if problem:
            return self.failed(message, permanent=True, error=problem)
        started = time.perf_counter()
        result = self.transmit(message)
        metrics.provider_answered(self.channel, time.perf_counter() - started, error_class(result))
        return result

    def transmit(self, message: OutgoingMessage) -> SendResult:
        raise NotImplementedError

    def failed(self, message: OutgoingMessage, permanent: bool, error: str, retry_after: float | None = None,
               throttled: bool = False, destination_gone: bool = False) -> SendResult:
        """Mask, log once, and wrap a failure; destination_gone (permanent only): the answer says the
        destination itself is undeliverable for good, so it is suppressed."""
        error = mask_text(" ".join(error.split()), self.secret)
        gone = permanent and destination_gone
        logging.getLogger(f"alerts.senders.{self.name}").warning(
            "%s delivery %s %s: %s", self.channel, message.delivery_id,
            "failed, destination suppressed" if gone else "failed" if permanent else "deferred", error)
        if permanent:
            return SendResult.permanent(error, suppress=gone)
        return SendResult.transient(error, retry_after=retry_after, throttled=throttled)

    def unreachable(self, message: OutgoingMessage, error: str) -> SendResult:
        """The provider could not be reached: transient, and the channel pauses for a while."""
        return self.failed(message, permanent=False, error=error, retry_after=UNREACHABLE_COOLDOWN)

    def flush(self) -> None:
        """Nothing buffered: a message is the provider's once it accepted it."""

    def close(self) -> None:
        pass


def error_class(result: SendResult) -> str | None:
    """The class of a provider's failure for alerts_provider_errors_total; None when it took the message."""
    if result.outcome is Outcome.SENT:
        return None
    if result.throttled:
        return "throttled"
    if result.outcome is Outcome.PERMANENT:
        return "permanent"
    return "unreachable" if result.retry_after == UNREACHABLE_COOLDOWN else "transient"


def entry_points(parse_config: Callable[[Mapping[str, str]], ConfigT | None],
                 make: Callable[[ConfigT], SenderT]) -> tuple[Callable[[Mapping[str, str]], SenderT | None],
                                                            Callable[[Mapping[str, str]], str | None]]:
    """(from_env, check_config) of a provider module: the sender, or a one-line summary without
    contacting anything; None when the provider is not configured; UsageError when malformed."""

    def from_env(env: Mapping[str, str]) -> SenderT | None:
        config = parse_config(env)
        return make(config) if config is not None else None

    def check_config(env: Mapping[str, str]) -> str | None:
        config = parse_config(env)
        return config.describe() if config is not None else None

    return from_env, check_config
