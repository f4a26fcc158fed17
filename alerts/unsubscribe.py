"""One-click unsubscribe links (RFC 8058): ALERTS_UNSUBSCRIBE_URL and ALERTS_UNSUBSCRIBE_SECRET.

With both set, every alert email carries `List-Unsubscribe: <URL?token=...>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and its footer links the same URL. The
token is `<user id>.<channel>.<signature>`: the signature is HMAC-SHA256 keyed with the secret
over 'alerts-v2 unsubscribe <user id> <channel>', unpadded base64url, so the token is URL-safe
as it is and ends the URL. The host's web route hands it to `SELECT alerts_unsubscribe(token)`,
which checks the signature with the secret `runner.py --migrate` stored
(docs/delivery-hygiene.md). Neither variable set: no headers, no link, as before.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

from alerts.errors import UsageError

log = logging.getLogger("alerts")

URL_VARIABLE = "ALERTS_UNSUBSCRIBE_URL"
SECRET_VARIABLE = "ALERTS_UNSUBSCRIBE_SECRET"
MIN_SECRET_CHARS = 16
ONE_CLICK = "List-Unsubscribe=One-Click"  # the List-Unsubscribe-Post header's value (RFC 8058)


def signature(secret: str, user_id: int, channel: str) -> str:
    """What alerts_unsubscribe_signature() computes in SQL: unpadded base64url of the HMAC."""
    digest = hmac.new(secret.encode(), f"alerts-v2 unsubscribe {int(user_id)} {channel}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def fingerprint(secret: str) -> str:
    """What alerts_secret_fingerprint() computes: tells two secrets apart without revealing either."""
    return hmac.new(secret.encode(), b"alerts-v2 secret fingerprint", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Unsubscribe:
    url: str
    secret: str = field(repr=False)

    def token(self, user_id: int, channel: str) -> str:
        return f"{int(user_id)}.{channel}.{signature(self.secret, user_id, channel)}"

    def link(self, user_id: int, channel: str = "email") -> str:
        """The URL with the user's token as its last parameter."""
        joiner = "&" if urlsplit(self.url).query else ("" if self.url.endswith("?") else "?")
        return f"{self.url}{joiner}token={self.token(user_id, channel)}"


def secret_from_env(env: Mapping[str, str]) -> str | None:
    """ALERTS_UNSUBSCRIBE_SECRET; None when unset; UsageError when too short."""
    secret = env.get(SECRET_VARIABLE, "")
    if not secret.strip():
        return None
    if len(secret) < MIN_SECRET_CHARS or any(c.isspace() or not c.isprintable() for c in secret):
        raise UsageError(f"{SECRET_VARIABLE} must be at least {MIN_SECRET_CHARS} printable characters without "
                         "spaces: generate one, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return secret


def from_env(env: Mapping[str, str]) -> Unsubscribe | None:
    """The unsubscribe settings; None when ALERTS_UNSUBSCRIBE_URL is not set; UsageError (exit 2) when the
    URL is not an http(s) address or the secret is missing or too short."""
    raw = env.get(URL_VARIABLE, "").strip()
    secret = secret_from_env(env)
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.fragment \
            or not raw.isascii() or any(c.isspace() or c in "<>\"" for c in raw):
        raise UsageError(f"{URL_VARIABLE}={raw!r} is not a web address: set it to the host's unsubscribe route, "
                         "e.g. https://app.example.com/alerts/unsubscribe")
    if secret is None:
        raise UsageError(f"{URL_VARIABLE} is set but {SECRET_VARIABLE} is not: links need the secret to be "
                         "signed; set both (and run runner.py --migrate once with the secret)")
    return Unsubscribe(url=raw, secret=secret)


def store_secret(conn: psycopg.Connection, secret: str | None) -> dict[str, object]:
    """runner.py --migrate: hand the engine ALERTS_UNSUBSCRIBE_SECRET (the deployer is alerts_owner's
    member); what it did, never the secret. Unset: the stored secret, if any, stays."""
    if secret is None:
        return {}
    row = conn.execute("SELECT alerts_set_unsubscribe_secret(%s)", [secret]).fetchone()
    return dict(row[0]) if row else {}


def warn_if_secret_differs(conn: psycopg.Connection, secret: str | None) -> str | None:
    """Every run with ALERTS_UNSUBSCRIBE_SECRET set: one line on stderr when the engine checks tokens
    with another secret, or with none yet (links signed in this run would be refused); the state."""
    if secret is None:
        return None
    deployed = conn.execute("SELECT to_regprocedure('alerts_unsubscribe_secret_check(text)') IS NOT NULL").fetchone()
    if not deployed or not deployed[0]:
        return None
    row = conn.execute("SELECT alerts_unsubscribe_secret_check(%s)", [fingerprint(secret)]).fetchone()
    state = str(row[0]) if row else "unset"
    if state == "differs":
        log.warning("%s differs from the secret the database checks unsubscribe tokens with: links signed in this "
                    "run will be refused; run runner.py --migrate with the new secret", SECRET_VARIABLE)
    elif state == "unset":
        log.warning("%s is set but the database has no unsubscribe secret yet: links signed in this run will be "
                    "refused; run runner.py --migrate with it set", SECRET_VARIABLE)
    return state
