"""The one rule of what a destination may be, used by Phase C before it claims a provider's
time and by every provider before it sends.

A malformed destination will never start working by retrying, so its delivery is
skipped with the reason instead of being retried until its attempts run out. A phone number
may carry the usual formatting (spaces, dots, dashes, parentheses); normalized() removes it.
"""

import re

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_TELEGRAM_CHAT = re.compile(r"^(?:-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

_PHONE_FORMATTING = re.compile(r"[\s().-]")

_RULES = {
    "email": (_EMAIL, "not a valid email address"),
    "telegram": (_TELEGRAM_CHAT, "not a Telegram chat id (digits, or @channelname)"),
    "sms": (_E164, "not an E.164 phone number (+ and 7 to 15 digits)"),
}


def normalized(channel: str, destination: str) -> str:
    """The destination as a provider wants it: trimmed; a phone number without formatting."""
    value = destination.strip()
    return _PHONE_FORMATTING.sub("", value) if channel == "sms" else value


def destination_problem(channel: str, destination: str | None) -> str | None:
    """None when the destination is usable; otherwise why not, without echoing it in full."""
    if destination is None or not destination.strip():
        return f"user has no {channel} destination"
    rule = _RULES.get(channel)
    if rule is None:
        return f"unknown channel {channel!r}"
    pattern, message = rule
    if len(destination) > 254 or not pattern.match(normalized(channel, destination)):
        return f"{channel} destination {message}"
    return None
