"""SMS through Twilio's Messages API: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_API_BASE.

POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json with basic auth sid:token
and the form fields To, From, Body (plain text, at most 1600 characters). Outcomes:
201 {"sid": "SM..."} -> SENT with the sid; 429, 5xx, timeouts and connection errors ->
TRANSIENT; 401 (wrong sid or token: our settings, not the message) -> TRANSIENT; any other
4xx (e.g. 400 code 21211, not a valid phone number) -> PERMANENT with Twilio's code and
message. The auth token never appears in an error or a log record.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from alerts import templates
from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.secrets import mask_text
from alerts.senders.base import SendResult
from alerts.senders.http_common import http_base_url, json_object, retry_after_header

log = logging.getLogger("alerts.senders.twilio")

DEFAULT_API_BASE = "https://api.twilio.com"
BODY_MAX_CHARS = 1600
DEFAULT_TIMEOUT = 15.0
UNREACHABLE_COOLDOWN = 30.0

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_AUTH_TOKEN = re.compile(r"^[0-9A-Za-z]{16,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_PHONE_FORMATTING = re.compile(r"[\s().-]")


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    api_base: str

    def describe(self) -> str:
        return f"sms via Twilio {self.api_base} account {self.account_sid} from {self.sender}"


def _required(env: Mapping[str, str], variable: str, example: str) -> str:
    value = env.get(variable, "").strip()
    if not value:
        raise UsageError(f"{variable} is not set but other TWILIO_ settings are: set {variable}={example}")
    return value


def parse_config(env: Mapping[str, str]) -> TwilioConfig | None:
    """Twilio settings; None when none of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM
    is set; UsageError when some are missing or malformed."""
    if not any(env.get(v, "").strip() for v in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")):
        return None
    sid = _required(env, "TWILIO_ACCOUNT_SID", "AC followed by 32 hex digits")
    token = _required(env, "TWILIO_AUTH_TOKEN", "the auth token from the Twilio console")
    sender = _required(env, "TWILIO_FROM", "+15017122661")
    if not _ACCOUNT_SID.match(sid):
        raise UsageError("TWILIO_ACCOUNT_SID is malformed: expected AC followed by 32 hex digits")
    if not _AUTH_TOKEN.match(token):
        raise UsageError("TWILIO_AUTH_TOKEN is malformed: copy the auth token from the Twilio console")
    if not (_E164.match(sender) or _ALPHANUMERIC_SENDER.match(sender)):
        raise UsageError(f"TWILIO_FROM={sender!r} is neither an E.164 number like +15017122661 "
                         "nor an alphanumeric sender id of up to 11 characters")
    api_base = http_base_url(env, "TWILIO_API_BASE", DEFAULT_API_BASE)
    return TwilioConfig(account_sid=sid, auth_token=token, sender=sender, api_base=api_base)


def check_config(env: Mapping[str, str]) -> str | None:
    """Validate the Twilio settings without calling Twilio: a one-line summary (never the
    token), None when Twilio is not configured, UsageError when something is malformed."""
    config = parse_config(env)
    return config.describe() if config else None


def from_env(env: Mapping[str, str]) -> "TwilioSmsSender | None":
    config = parse_config(env)
    return TwilioSmsSender(config) if config else None


def phone_number(destination: str) -> str | None:
    """destination without spaces, dots, dashes and parentheses; None when it is not a phone number."""
    number = _PHONE_FORMATTING.sub("", destination)
    return number if re.fullmatch(r"\+?\d{3,15}", number) else None


class TwilioSmsSender:
    name = "twilio"

    def __init__(self, config: TwilioConfig, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.retry_after: float | None = None
        self._path = f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        self._client = httpx.Client(
            base_url=config.api_base,
            auth=httpx.BasicAuth(config.account_sid, config.auth_token),
            headers={"accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )

    def __repr__(self) -> str:
        return f"TwilioSmsSender({self.config.describe()})"

    def send(self, message: OutgoingMessage) -> SendResult:
        self.retry_after = None
        number = phone_number(message.destination)
        if number is None:
            return self._failed(message, permanent=True, error="invalid phone number")
        form = {"To": number, "From": self.config.sender, "Body": templates.sms_text(message)[:BODY_MAX_CHARS]}
        try:
            response = self._client.post(self._path, data=form)
        except httpx.TimeoutException:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False, error="Twilio did not answer in time (timeout)")
        except httpx.HTTPError as error:
            self.retry_after = UNREACHABLE_COOLDOWN
            return self._failed(message, permanent=False,
                                error=f"cannot reach Twilio: {type(error).__name__}: {error}")
        return self._outcome(message, response)

    def _outcome(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        if status in (200, 201) and isinstance(body.get("sid"), str):
            return SendResult.sent(str(body["sid"]))
        code = body.get("code")
        detail = (f"Twilio {status}{f' code {code}' if code else ''}: "
                  f"{body.get('message') or response.reason_phrase or 'unexpected answer'}")
        if status == 429:
            self.retry_after = retry_after_header(response)
            return self._failed(message, permanent=False, error=detail)
        if status == 401:
            return self._failed(message, permanent=False,
                                error=f"{detail} (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")
        return self._failed(message, permanent=400 <= status < 500, error=detail)

    def _failed(self, message: OutgoingMessage, permanent: bool, error: str) -> SendResult:
        error = mask_text(" ".join(error.split()), self.config.auth_token)
        log.warning("sms delivery %s %s: %s", message.delivery_id, "failed" if permanent else "deferred", error)
        return SendResult.permanent(error) if permanent else SendResult.transient(error)

    def flush(self) -> None:
        """Nothing buffered: a message is Twilio's once it answered 201."""

    def close(self) -> None:
        self._client.close()
