"""What messages say about the recipient's own settings: ALERTS_PREFERENCES_URL, the page where
a user changes or stops their alerts, named in every message's footer, and the one-click
unsubscribe link of every email (alerts.unsubscribe: ALERTS_UNSUBSCRIBE_URL and _SECRET)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from alerts import unsubscribe
from alerts.errors import UsageError
from alerts.unsubscribe import Unsubscribe

PREFERENCES_URL_VARIABLE = "ALERTS_PREFERENCES_URL"


@dataclass(frozen=True)
class MessageSettings:
    preferences_url: str | None = None
    unsubscribe: Unsubscribe | None = None  # set: every email links its recipient's one-click unsubscribe


def settings_from_env(env: Mapping[str, str]) -> MessageSettings:
    """The settings in env; UsageError (exit 2) when ALERTS_PREFERENCES_URL is not an http(s) URL, or
    the unsubscribe variables are malformed."""
    one_click = unsubscribe.from_env(env)
    raw = env.get(PREFERENCES_URL_VARIABLE, "").strip()
    if not raw:
        return MessageSettings(unsubscribe=one_click)
    try:
        parts = urlsplit(raw)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in raw):
        raise UsageError(f"{PREFERENCES_URL_VARIABLE}={raw!r} is not a web address: set it to the page where "
                         "users change their alerts, e.g. https://app.example.com/settings/alerts")
    return MessageSettings(preferences_url=raw, unsubscribe=one_click)


@cache
def current_settings() -> MessageSettings:
    """The process's settings, read once from the environment (the runner checks them before Phase C)."""
    return settings_from_env(os.environ)
