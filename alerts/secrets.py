"""Masking of secrets before anything reaches a log, an error or a count."""

import re
from urllib.parse import urlsplit, urlunsplit

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")
_KEY_VALUE = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|token|secret|auth_token|api_key)=(?P<value>[^\s&]+)"
)
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")


def mask_url(url: str) -> str:
    """Return url with its password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def mask_text(text: str, *secrets: str | None) -> str:
    """Mask URL passwords, key=value secrets, bot tokens and any of the given secret values."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    masked = _KEY_VALUE.sub(lambda m: f"{m['key']}=***", masked)
    masked = _BOT_TOKEN.sub("***", masked)
    for secret in secrets:
        if secret and len(secret) >= 4:
            masked = masked.replace(secret, "***")
    return masked
