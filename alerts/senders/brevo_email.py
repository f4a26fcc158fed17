"""Email through Brevo's transactional API: BREVO_API_KEY, EMAIL_FROM, BREVO_BASE_URL.

POST {BREVO_BASE_URL}/v3/smtp/email with the key in the api-key header. Outcomes:
201 {"messageId": ...} -> SENT with Brevo's message id; 429, 5xx, timeouts and connection
errors -> TRANSIENT (429's Retry-After, when given, holds the channel, which also slows down
for the rest of the run); 401 (the
key is wrong: our settings, not the message) -> TRANSIENT; any other 4xx -> PERMANENT with
Brevo's code and message. The key never appears in an error or a log record.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    retry_after_header,
)
from alerts.senders.provider import entry_points
from alerts.senders.smtp_email import EmailFrom, parse_email_from

DEFAULT_BASE_URL = "https://api.brevo.com"
SEND_PATH = "/v3/smtp/email"


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
        "headers": {"Message-ID": templates.email_message_id(message.delivery_id, email_from.domain, message.kind),
                    "Auto-Submitted": "auto-generated",  # RFC 3834: no vacation auto-replies
                    **templates.list_unsubscribe_headers(message)},
    }


class BrevoEmailSender(HttpProvider):
    name = "brevo"
    channel = "email"
    label = "Brevo"

    def __init__(self, config: BrevoConfig, timeout: float = DEFAULT_TIMEOUT,
                 connections: int = DEFAULT_POOL) -> None:
        client = http_client(config.base_url, timeout, connections,
                             headers={"api-key": config.api_key, "accept": "application/json"})
        super().__init__(config, config.api_key, client)

    def __repr__(self) -> str:
        return f"BrevoEmailSender({self.config.base_url})"

    def request(self, message: OutgoingMessage) -> tuple[str, dict[str, object]]:
        return SEND_PATH, {"json": request_body(message, self.config.email_from)}

    def classify(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        if 200 <= status < 300:
            message_id = body.get("messageId") or templates.email_message_id(
                message.delivery_id, self.config.email_from.domain, message.kind)
            return SendResult.sent(str(message_id))
        detail = f"Brevo {status} {body.get('code', '')}: {body.get('message', response.reason_phrase)}"
        if status == 429:
            return self.failed(message, permanent=False, error=detail, retry_after=retry_after_header(response),
                               throttled=True)
        if status == 401:
            return self.failed(message, permanent=False, error=f"{detail} (check BREVO_API_KEY)")
        return self.failed(message, permanent=400 <= status < 500, error=detail)


from_env, check_config = entry_points(parse_config, BrevoEmailSender)
