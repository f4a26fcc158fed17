"""Checks that a destination can be delivered to at all, before any provider is asked.

A malformed destination will never start working by retrying, so its delivery is
skipped with the reason instead of being retried until its attempts run out.
"""

import re

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_TELEGRAM_CHAT = re.compile(r"^(?:-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

_RULES = {
    "email": (_EMAIL, "not a valid email address"),
    "telegram": (_TELEGRAM_CHAT, "not a Telegram chat id (digits, or @channelname)"),
    "sms": (_E164, "not an E.164 phone number (+ and 7 to 15 digits)"),
}


def destination_problem(channel: str, destination: str | None) -> str | None:
    """None when the destination is usable; otherwise why not, without echoing it in full."""
    if destination is None or not destination.strip():
        return f"user has no {channel} destination"
    rule = _RULES.get(channel)
    if rule is None:
        return f"unknown channel {channel!r}"
    pattern, message = rule
    if len(destination) > 254 or not pattern.match(destination):
        return f"{channel} destination {message}"
    return None
