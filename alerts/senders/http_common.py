"""What the HTTP providers (Brevo, Telegram, Twilio) share: their base URL setting, one keep-alive
connection pool per provider sized to the channel's concurrency, the POST with its timeout and
connection-error plumbing, and reading an answer's JSON body and Retry-After header without
trusting either. A subclass says where to POST what (request()) and what the answer means
(classify())."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.senders.base import SendResult
from alerts.senders.provider import DEFAULT_TIMEOUT, Provider

DEFAULT_POOL = 20


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


def pool_limits(connections: int) -> httpx.Limits:
    """Keep-alive connections for as many requests as the channel has in flight."""
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30)


def timeouts(seconds: float) -> httpx.Timeout:
    """The whole timeout for reading the answer; connecting gets at most 5 s. Waiting for a free pooled
    connection is not limited: the runner never has more requests in flight than the pool holds."""
    return httpx.Timeout(seconds, connect=min(seconds, 5.0), pool=None)


def http_client(base_url: str, timeout: float, connections: int, **options: Any) -> httpx.Client:
    """The client every HTTP provider sends through: base_url, the timeouts, and a keep-alive pool of
    `connections` (on the client, unless options bring a transport of their own that holds it)."""
    if "transport" not in options:
        options["limits"] = pool_limits(connections)
    return httpx.Client(base_url=base_url, timeout=timeouts(timeout), **options)


class HttpProvider(Provider):
    """A provider reached by one POST per message through a shared, thread-safe httpx.Client."""

    label = "the provider"  # for error texts: "cannot reach Telegram"

    def __init__(self, config: Any, secret: str, client: httpx.Client) -> None:
        self.config = config
        self.secret = secret  # masked wherever an error or a log line could show it
        self._client = client

    def request(self, message: OutgoingMessage) -> tuple[str, dict[str, object]]:
        """(path, httpx keyword arguments) of the message's POST."""
        raise NotImplementedError

    def classify(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        raise NotImplementedError

    def transmit(self, message: OutgoingMessage) -> SendResult:
        path, arguments = self.request(message)
        try:
            response = self._client.post(path, **arguments)  # type: ignore[arg-type]
        except httpx.TimeoutException:
            return self.unreachable(message, f"{self.label} did not answer in time (timeout)")
        except httpx.HTTPError as error:
            return self.unreachable(message, f"cannot reach {self.label}: {type(error).__name__}: {error}")
        return self.classify(message, response)

    def close(self) -> None:
        self._client.close()


__all__ = ["DEFAULT_TIMEOUT", "HttpProvider", "http_base_url", "json_object", "pool_limits", "retry_after_header",
           "timeouts"]
