"""Per-channel sending limits from the environment, with defaults safe for each provider's
published limits.

    ALERTS_CONCURRENCY_<CHANNEL>              messages of the channel in flight at once
    ALERTS_RATE_LIMIT_<CHANNEL>_PER_SECOND    steady rate (a decimal number; 0.5 = one every 2 s)
    ALERTS_RATE_LIMIT_<CHANNEL>_PER_MINUTE    at most this many in any minute; the rest waits for a later run

Defaults: email 20 in flight, unpaced (Postfix, the commonest relay, lets one client open 50
connections); Telegram 30 messages/s per bot and one message per second to one chat (the Bot
API's published limits), 10 in flight; SMS one message per second (what Twilio lets one long-code
number send), 4 in flight.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

from alerts.errors import UsageError

CHANNEL_NAMES = ("email", "telegram", "sms")


@dataclass(frozen=True)
class ChannelLimits:
    concurrency: int
    per_second: float | None = None
    per_minute: int | None = None
    per_destination_interval: float = 0.0  # seconds between two messages to one destination


DEFAULT_LIMITS: dict[str, ChannelLimits] = {
    "email": ChannelLimits(concurrency=20),
    "telegram": ChannelLimits(concurrency=10, per_second=30.0, per_destination_interval=1.0),
    "sms": ChannelLimits(concurrency=4, per_second=1.0),
}
MAX_CONCURRENCY = 200


def _positive_int(env: Mapping[str, str], name: str, upper: int | None = None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1 or (upper is not None and int(raw) > upper):
        bound = f" up to {upper}" if upper is not None else ""
        raise UsageError(f"{name} must be a positive integer{bound}, got {raw!r}")
    return int(raw)


def _positive_number(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100_000:
        raise UsageError(f"{name} must be a number of messages per second above 0 (e.g. 30 or 0.5), got {raw!r}")
    return value


def limits_from_env(env: Mapping[str, str]) -> dict[str, ChannelLimits]:
    """Each channel's limits: its defaults overridden by whatever the environment sets."""
    limits = {}
    for channel in CHANNEL_NAMES:
        upper = channel.upper()
        found = DEFAULT_LIMITS[channel]
        concurrency = _positive_int(env, f"ALERTS_CONCURRENCY_{upper}", MAX_CONCURRENCY)
        per_second = _positive_number(env, f"ALERTS_RATE_LIMIT_{upper}_PER_SECOND")
        per_minute = _positive_int(env, f"ALERTS_RATE_LIMIT_{upper}_PER_MINUTE")
        if concurrency is not None:
            found = replace(found, concurrency=concurrency)
        if per_second is not None:
            found = replace(found, per_second=per_second)
        if per_minute is not None:
            found = replace(found, per_minute=per_minute)
        limits[channel] = found
    return limits
