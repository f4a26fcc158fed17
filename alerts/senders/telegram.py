"""Telegram through the Bot API: TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE.

POST {TELEGRAM_API_BASE}/bot{token}/sendMessage with chat_id, text (parse_mode HTML, every
source value escaped) and disable_web_page_preview. Outcomes:
{"ok": true, "result": {"message_id": N}} -> SENT with N; 429 -> TRANSIENT with the
server's parameters.retry_after exposed as retry_after; 400 (chat not found, message
refused) and 403 (bot blocked, kicked) -> PERMANENT; 5xx, timeouts, connection errors ->
TRANSIENT; 401/404 (the token is wrong: our settings, not the message) -> TRANSIENT.

The token is part of the URL, and httpx puts URLs in its log records and some errors.
So httpx never sees it: requests go to /bot***/..., and a transport below httpx's
logging swaps the real token in just before the bytes go out. Error strings are masked
as well, in case a token ever turns up anyway.
"""

import logging
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from alerts import templates
from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.secrets import mask_text
from alerts.senders.base import SendResult
from alerts.senders.http_common import http_base_url, json_object

log = logging.getLogger("alerts.senders.telegram")

DEFAULT_API_BASE = "https://api.telegram.org"
TOKEN_PLACEHOLDER = "***"
DEFAULT_TIMEOUT = 15.0
UNREACHABLE_COOLDOWN = 30.0

_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
_CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,})$")


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


def check_config(env: Mapping[str, str]) -> str | None:
    """Validate the Telegram settings without calling Telegram: a one-line summary (the bot
    id, never the token), None when TELEGRAM_BOT_TOKEN is not set, UsageError when malformed."""
    config = parse_config(env)
    return config.describe() if config else None


def from_env(env: Mapping[str, str]) -> "TelegramSender | None":
    config = parse_config(env)
    return TelegramSender(config) if config else None


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


def chat_problem(chat_id: str) -> str | None:
    return None if _CHAT_ID.match(chat_id) else "invalid Telegram chat id (digits, or @channelname)"


def retry_after_of(body: Mapping[str, object]) -> float | None:
    parameters = body.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else None


class TelegramSender:
    name = "telegram"

    def __init__(self, config: TelegramConfig, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.retry_after: float | None = None  # seconds Telegram asked us to wait (429)
        inner = httpx.HTTPTransport(proxy=env_proxy(config.api_base), retries=0)
        self._client = httpx.Client(
            base_url=config.api_base,
            transport=BotTokenTransport(config.token, inner),
            trust_env=False,  # proxies come from env_proxy, on the inner transport
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )

    def __repr__(self) -> str:
        return f"TelegramSender({self.config.describe()})"

    def send(self, message: OutgoingMessage) -> SendResult:
        self.retry_after = None
        chat_id = message.destination.strip()
        problem = chat_problem(chat_id)
        if problem:
            return self._failed(message, permanent=True, error=problem)
        payload = {"chat_id": chat_id, "text": templates.telegram_html(message), "parse_mode": "HTML",
                   "disable_web_page_preview": True}
        try:
            response = self._client.post(f"/bot{TOKEN_PLACEHOLDER}/sendMessage", json=payload)
        except httpx.TimeoutException:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False, error="Telegram did not answer in time (timeout)")
        except httpx.HTTPError as error:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False,
                                error=f"cannot reach Telegram: {type(error).__name__}: {error}")
        return self._outcome(message, response)

    def _outcome(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        result = body.get("result")
        if status == 200 and body.get("ok") is True and isinstance(result, dict) and "message_id" in result:
            return SendResult.sent(str(result["message_id"]))
        detail = f"Telegram {status}: {body.get('description') or response.reason_phrase or 'unexpected answer'}"
        if status == 429:
            self.retry_after = retry_after_of(body)
            suffix = f" (retry after {self.retry_after:g}s)" if self.retry_after is not None else ""
            return self._failed(message, permanent=False, error=detail + suffix)
        if status in (401, 404):
            return self._failed(message, permanent=False, error=f"{detail} (check TELEGRAM_BOT_TOKEN)")
        return self._failed(message, permanent=400 <= status < 500, error=detail)

    def _failed(self, message: OutgoingMessage, permanent: bool, error: str) -> SendResult:
        error = mask_text(" ".join(error.split()), self.config.token)
        log.warning("telegram delivery %s %s: %s", message.delivery_id, "failed" if permanent else "deferred",
                    error)
        return SendResult.permanent(error) if permanent else SendResult.transient(error)

    def flush(self) -> None:
        """Nothing buffered: a message is Telegram's once it answered ok."""

    def close(self) -> None:
        self._client.close()
