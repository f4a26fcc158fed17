"""What the HTTP senders (Brevo, Telegram, Twilio) share: their base URL setting and
reading an answer's JSON body and Retry-After header without trusting either."""

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from alerts.errors import UsageError


def http_base_url(env: Mapping[str, str], variable: str, default: str) -> str:
    """An http(s) base URL from env without a trailing slash; UsageError when malformed."""
    raw = env.get(variable, "").strip() or default
    try:
        parts = urlsplit(raw)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise UsageError(f"{variable} must be an http(s) base URL without credentials, like {default}")
    return raw.rstrip("/")


def json_object(response: httpx.Response) -> dict[str, object]:
    """The body as a JSON object; {} when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after_header(response: httpx.Response) -> float | None:
    """Retry-After in seconds, when the answer carries a usable one."""
    raw = response.headers.get("retry-after", "").strip()
    try:
        return max(float(raw), 0.0) if raw else None
    except ValueError:
        return None
