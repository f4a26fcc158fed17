"""Masking of secrets before anything reaches a log, an error or a count.

Connection strings are read the way libpq reads them (psycopg.conninfo.conninfo_to_dict), in
URI and key=value form, so a password holding '#', '@', '/', '?' or spaces is found whole.
Other URLs (smtp://user:pa/ss@host) have no parser that agrees with what users type, so their
user information is taken to end at the last '@': the one before the host, as a user means it.
A password is also masked piece by piece (the parts between URL delimiters), because a
mistyped URL makes libpq read a piece of it as a host or a port and quote that in its error.
"""

import re
from functools import lru_cache
from urllib.parse import quote, unquote

from psycopg import conninfo, pq

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
SECRET_KEYS = r"password|passwd|pwd|sslpassword|token|secret|auth_token|api_key"

_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)")
# key=value secrets: a libpq quoted value ('...' with backslash escapes) or a bare one.
_KEY_VALUE = re.compile(rf"(?i)\b(?P<key>{SECRET_KEYS})(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&]+)")
_KEY_VALUE_TO_NEXT_KEY = re.compile(rf"(?i)\b(?:{SECRET_KEYS})\s*=\s*(?P<value>[^'\s].*)")
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
_URL_DELIMITERS = re.compile(r"[@/?#:&=\s]+")


@lru_cache(maxsize=1)
def _next_libpq_keyword() -> re.Pattern[str]:
    """Whitespace, then a keyword libpq knows (host, dbname, ...) and '='."""
    keywords = sorted((option.keyword.decode() for option in pq.Conninfo.get_defaults()), key=len, reverse=True)
    return re.compile(r"\s+(?:" + "|".join(map(re.escape, keywords)) + r")\s*=")


def is_libpq_string(value: str) -> bool:
    """Whether value is meant for libpq: a postgres(ql):// URI or key=value pairs."""
    return value.lstrip().lower().startswith(("postgresql://", "postgres://")) or (
        "=" in value and _SCHEME.match(value.lstrip()) is None)


def libpq_password(value: str) -> str | None:
    """The password libpq would use from a connection string, or None (also when it does not parse)."""
    if not is_libpq_string(value):
        return None
    try:
        return conninfo.conninfo_to_dict(value).get("password") or None  # type: ignore[return-value]
    except Exception:  # a malformed string: libpq says why, but the value may hold the secret
        return None


def url_userinfo_password(url: str) -> str | None:
    """The password of scheme://user:password@host..., the user information ending at the last '@'."""
    scheme = _SCHEME.search(url)
    if scheme is None:
        return None
    rest = url[scheme.end():]
    userinfo, at, _ = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1] or None


def secret_variants(secret: str | None) -> list[str]:
    """The secret as written, percent-decoded and -encoded, and each piece of it between URL
    delimiters, longest first; pieces shorter than MIN_SECRET_LENGTH are left out."""
    if not secret:
        return []
    found = {secret, unquote(secret), quote(secret, safe="")}
    for whole in list(found):
        found.update(piece for piece in _URL_DELIMITERS.split(whole))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def passwords_in(value: str) -> list[str]:
    """Every password-like value a connection string or URL holds, as libpq and as a user reads it."""
    candidates = [libpq_password(value), url_userinfo_password(value)]
    for match in _KEY_VALUE.finditer(value):
        raw = match["value"]
        candidates.append(raw)
        if raw.startswith("'"):
            candidates.append(re.sub(r"\\(.)", r"\1", raw.strip("'")))
    if _SCHEME.match(value.lstrip()) is None:
        # key=value pairs: an unquoted value with spaces (password=two words=x) is what the user
        # meant, up to the next keyword libpq knows.
        for match in _KEY_VALUE_TO_NEXT_KEY.finditer(value):
            rest = match["value"]
            next_key = _next_libpq_keyword().search(rest)
            candidates.append(rest[:next_key.start()] if next_key else rest)
    return [c for c in candidates if c]


def _mask_userinfo(text: str) -> str:
    """scheme://user:anything@ -> scheme://user:***@, the user information ending at the last '@'
    of the URL (a URL ends at whitespace)."""
    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme = _SCHEME.match(url)
        assert scheme is not None
        userinfo, at, host = url[scheme.end():].rpartition("@")
        if not at or ":" not in userinfo:
            return url
        return f"{scheme.group(0)}{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", one, text)


def mask_url(url: str) -> str:
    """url with every password in it replaced by ***: libpq URIs and key=value strings, smtp:// and others."""
    return mask_text(url, *passwords_in(url))


def mask_text(text: str, *secrets: str | None) -> str:
    """Mask URL passwords, key=value secrets, bot tokens and any of the given secret values
    (with their encoded forms and pieces)."""
    variants = sorted({v for secret in secrets for v in secret_variants(secret)}, key=len, reverse=True)
    masked = text
    for variant in variants:
        masked = masked.replace(variant, MASK)
    masked = _mask_userinfo(masked)
    masked = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", masked)
    return _BOT_TOKEN.sub(MASK, masked)
