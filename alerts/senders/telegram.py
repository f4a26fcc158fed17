"""Telegram through the Bot API: TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE.

POST {TELEGRAM_API_BASE}/bot{token}/sendMessage with chat_id, text (parse_mode HTML, every
source value escaped) and disable_web_page_preview. Outcomes:
{"ok": true, "result": {"message_id": N}} -> SENT with N; 429 -> TRANSIENT with the
server's parameters.retry_after exposed as retry_after; 400 (chat not found, message
refused) and 403 (bot blocked, kicked) -> PERMANENT; 5xx, timeouts, connection errors ->
TRANSIENT; 401/404 (the token is wrong: our settings, not the message) -> TRANSIENT.
A 429 also slows the channel down for the rest of the run (see alerts.senders.pacing).

The token is part of the URL, and httpx puts URLs in its log records and some errors.
So httpx never sees it: requests go to /bot***/..., and a transport below httpx's
logging swaps the real token in just before the bytes go out. Error strings are masked
as well, in case a token ever turns up anyway.
"""

import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from alerts import templates
from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.senders.base import SendResult
from alerts.senders.http_common import (
    DEFAULT_POOL,
    DEFAULT_TIMEOUT,
    HttpProvider,
    http_base_url,
    http_client,
    json_object,
    pool_limits,
)
from alerts.senders.provider import entry_points

DEFAULT_API_BASE = "https://api.telegram.org"
TOKEN_PLACEHOLDER = "***"

_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")


@dataclass(frozen=True)
class TelegramConfig:
    token: str = field(repr=False)
    api_base: str

    def describe(self) -> str:
        bot_id = self.token.partition(":")[0]
        return f"telegram via {self.api_base} as bot {bot_id}"


def parse_config(env: Mapping[str, str]) -> TelegramConfig | None:
    """Telegram settings; None when TELEGRAM_BOT_TOKEN is not set; UsageError when malformed."""
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        return None
    if not _TOKEN.match(token):
        raise UsageError("TELEGRAM_BOT_TOKEN is malformed: expected <bot id>:<secret> "
                         "exactly as @BotFather gave it (without the 'bot' prefix)")
    return TelegramConfig(token=token, api_base=http_base_url(env, "TELEGRAM_API_BASE", DEFAULT_API_BASE))


def env_proxy(url: str) -> str | None:
    """The HTTP(S)_PROXY that applies to url, honouring NO_PROXY."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


class BotTokenTransport(httpx.BaseTransport):
    """Replaces /bot***/ by /bot{token}/ in a copy of each request, below httpx's logging."""

    def __init__(self, token: str, inner: httpx.BaseTransport) -> None:
        self._real_segment = f"/bot{token}/".encode()
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw_path = request.url.raw_path.replace(f"/bot{TOKEN_PLACEHOLDER}/".encode(), self._real_segment, 1)
        real = httpx.Request(request.method, request.url.copy_with(raw_path=raw_path), headers=request.headers,
                             stream=request.stream, extensions=request.extensions)
        return self._inner.handle_request(real)

    def close(self) -> None:
        self._inner.close()


def retry_after_of(body: Mapping[str, object]) -> float | None:
    parameters = body.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else None


# Answers that say the chat itself is gone for good (the Bot API's descriptions): the user blocked the
# bot or deleted the account (403), the chat does not exist (400). Anything else is about the message.
_CHAT_GONE = {403: ("bot was blocked by the user", "user is deactivated"), 400: ("chat not found",)}


def chat_gone(status: int, description: str) -> bool:
    text = description.lower()
    return any(phrase in text for phrase in _CHAT_GONE.get(status, ()))


class TelegramSender(HttpProvider):
    name = "telegram"
    channel = "telegram"
    label = "Telegram"

    def __init__(self, config: TelegramConfig, timeout: float = DEFAULT_TIMEOUT,
                 connections: int = DEFAULT_POOL) -> None:
        inner = httpx.HTTPTransport(proxy=env_proxy(config.api_base), retries=0, limits=pool_limits(connections))
        client = http_client(config.api_base, timeout, connections,
                             transport=BotTokenTransport(config.token, inner),
                             trust_env=False)  # proxies come from env_proxy, on the inner transport
        super().__init__(config, config.token, client)

    def __repr__(self) -> str:
        return f"TelegramSender({self.config.describe()})"

    def request(self, message: OutgoingMessage) -> tuple[str, dict[str, object]]:
        payload = {"chat_id": message.destination.strip(), "text": templates.telegram_html(message),
                   "parse_mode": "HTML", "disable_web_page_preview": True}
        return f"/bot{TOKEN_PLACEHOLDER}/sendMessage", {"json": payload}

    def classify(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        result = body.get("result")
        if status == 200 and body.get("ok") is True and isinstance(result, dict) and "message_id" in result:
            return SendResult.sent(str(result["message_id"]))
        detail = f"Telegram {status}: {body.get('description') or response.reason_phrase or 'unexpected answer'}"
        if status == 429:
            wait = retry_after_of(body)
            suffix = f" (retry after {wait:g}s)" if wait is not None else ""
            return self.failed(message, permanent=False, error=detail + suffix, retry_after=wait, throttled=True)
        if status in (401, 404):
            return self.failed(message, permanent=False, error=f"{detail} (check TELEGRAM_BOT_TOKEN)")
        return self.failed(message, permanent=400 <= status < 500, error=detail,
                           destination_gone=chat_gone(status, str(body.get("description") or "")))


from_env, check_config = entry_points(parse_config, TelegramSender)
