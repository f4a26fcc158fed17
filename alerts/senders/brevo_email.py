"""Email through Brevo's transactional API: BREVO_API_KEY, EMAIL_FROM, BREVO_BASE_URL.

POST {BREVO_BASE_URL}/v3/smtp/email with the key in the api-key header. Outcomes:
201 {"messageId": ...} -> SENT with Brevo's message id; 429, 5xx, timeouts and connection
errors -> TRANSIENT (429's Retry-After, when given, is exposed as retry_after); 401 (the
key is wrong: our settings, not the message) -> TRANSIENT; any other 4xx -> PERMANENT with
Brevo's code and message. The key never appears in an error or a log record.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from alerts import templates
from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.secrets import mask_text
from alerts.senders.base import SendResult
from alerts.senders.http_common import http_base_url, json_object, retry_after_header
from alerts.senders.smtp_email import EmailFrom, address_problem, parse_email_from

log = logging.getLogger("alerts.senders.brevo")

DEFAULT_BASE_URL = "https://api.brevo.com"
SEND_PATH = "/v3/smtp/email"
DEFAULT_TIMEOUT = 15.0
UNREACHABLE_COOLDOWN = 30.0


@dataclass(frozen=True)
class BrevoConfig:
    api_key: str = field(repr=False)
    email_from: EmailFrom
    base_url: str

    def describe(self) -> str:
        return f"email via Brevo {self.base_url} from {self.email_from.address}"


def parse_config(env: Mapping[str, str]) -> BrevoConfig | None:
    """Brevo settings; None when BREVO_API_KEY is not set; UsageError when malformed."""
    api_key = env.get("BREVO_API_KEY", "").strip()
    if not api_key:
        return None
    if any(c.isspace() or not c.isprintable() for c in api_key) or len(api_key) < 8:
        raise UsageError("BREVO_API_KEY is malformed (too short or contains spaces): "
                         "copy the API key from Brevo's SMTP & API settings")
    return BrevoConfig(api_key=api_key, email_from=parse_email_from(env, "BREVO_API_KEY"),
                       base_url=http_base_url(env, "BREVO_BASE_URL", DEFAULT_BASE_URL))


def check_config(env: Mapping[str, str]) -> str | None:
    """Validate the Brevo settings without calling Brevo: a one-line summary, None when
    BREVO_API_KEY is not set, UsageError when something is malformed."""
    config = parse_config(env)
    return config.describe() if config else None


def from_env(env: Mapping[str, str]) -> "BrevoEmailSender | None":
    config = parse_config(env)
    return BrevoEmailSender(config) if config else None


def request_body(message: OutgoingMessage, email_from: EmailFrom) -> dict[str, object]:
    sender: dict[str, str] = {"email": email_from.address}
    if email_from.name:
        sender["name"] = email_from.name
    return {
        "sender": sender,
        "to": [{"email": message.destination}],
        "subject": templates.email_subject(message),
        "htmlContent": templates.email_html(message),
        "textContent": templates.email_text(message),
        "headers": {"Message-ID": templates.email_message_id(message.delivery_id, email_from.domain, message.kind)},
    }


class BrevoEmailSender:
    name = "brevo"

    def __init__(self, config: BrevoConfig, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.retry_after: float | None = None
        self._client = httpx.Client(
            base_url=config.base_url,
            headers={"api-key": config.api_key, "accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )

    def __repr__(self) -> str:
        return f"BrevoEmailSender({self.config.base_url})"

    def send(self, message: OutgoingMessage) -> SendResult:
        self.retry_after = None
        problem = address_problem(message.destination)
        if problem:
            return self._failed(message, permanent=True, error=problem)
        try:
            response = self._client.post(SEND_PATH, json=request_body(message, self.config.email_from))
        except httpx.TimeoutException:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False, error="Brevo did not answer in time (timeout)")
        except httpx.HTTPError as error:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False, error=f"cannot reach Brevo: {type(error).__name__}: "
                                                                f"{error}")
        return self._outcome(message, response)

    def _outcome(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        if 200 <= status < 300:
            message_id = body.get("messageId") or templates.email_message_id(
                message.delivery_id, self.config.email_from.domain, message.kind)
            return SendResult.sent(str(message_id))
        detail = f"Brevo {status} {body.get('code', '')}: {body.get('message', response.reason_phrase)}"
        if status == 429:
            self.retry_after = retry_after_header(response)
            return self._failed(message, permanent=False, error=detail)
        if status == 401:
            return self._failed(message, permanent=False, error=f"{detail} (check BREVO_API_KEY)")
        return self._failed(message, permanent=400 <= status < 500, error=detail)

    def _failed(self, message: OutgoingMessage, permanent: bool, error: str) -> SendResult:
        error = mask_text(" ".join(error.split()), self.config.api_key)
        log.warning("email delivery %s %s: %s", message.delivery_id, "failed" if permanent else "deferred", error)
        return SendResult.permanent(error) if permanent else SendResult.transient(error)

    def flush(self) -> None:
        """Nothing buffered: a message is Brevo's once it answered 201."""

    def close(self) -> None:
        self._client.close()
