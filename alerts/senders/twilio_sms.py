"""SMS through Twilio's Messages API: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_API_BASE.

POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json with basic auth sid:token
and the form fields To, From, Body (plain text, at most 1600 characters). Outcomes:
201 {"sid": "SM..."} -> SENT with the sid; 429, 5xx, timeouts and connection errors ->
TRANSIENT (a 429 also slows the channel down for the rest of the run); 401 (wrong sid or
token: our settings, not the message) -> TRANSIENT; any other
4xx (e.g. 400 code 21211, not a valid phone number) -> PERMANENT with Twilio's code and
message. The auth token never appears in an error or a log record.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from alerts import templates
from alerts.destinations import normalized
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

DEFAULT_API_BASE = "https://api.twilio.com"
BODY_MAX_CHARS = 1600

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_AUTH_TOKEN = re.compile(r"^[0-9A-Za-z]{16,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


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


# Twilio error codes about the number itself: 21610 the recipient replied STOP, 21211 not a valid
# phone number, 21614 not a mobile number. Any other code is about the message or the account.
NUMBER_GONE_CODES = frozenset({21610, 21211, 21614})


class TwilioSmsSender(HttpProvider):
    name = "twilio"
    channel = "sms"
    label = "Twilio"

    def __init__(self, config: TwilioConfig, timeout: float = DEFAULT_TIMEOUT,
                 connections: int = DEFAULT_POOL) -> None:
        self._path = f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        client = http_client(config.api_base, timeout, connections,
                             auth=httpx.BasicAuth(config.account_sid, config.auth_token),
                             headers={"accept": "application/json"})
        super().__init__(config, config.auth_token, client)

    def __repr__(self) -> str:
        return f"TwilioSmsSender({self.config.describe()})"

    def request(self, message: OutgoingMessage) -> tuple[str, dict[str, object]]:
        form = {"To": normalized("sms", message.destination), "From": self.config.sender,
                "Body": templates.sms_text(message)[:BODY_MAX_CHARS]}
        return self._path, {"data": form}

    def classify(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_object(response)
        if status in (200, 201) and isinstance(body.get("sid"), str):
            return SendResult.sent(str(body["sid"]))
        code = body.get("code")
        detail = (f"Twilio {status}{f' code {code}' if code else ''}: "
                  f"{body.get('message') or response.reason_phrase or 'unexpected answer'}")
        if status == 429:
            return self.failed(message, permanent=False, error=detail, retry_after=retry_after_header(response),
                               throttled=True)
        if status == 401:
            return self.failed(message, permanent=False,
                               error=f"{detail} (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")
        return self.failed(message, permanent=400 <= status < 500, error=detail,
                           destination_gone=400 <= status < 500 and code in NUMBER_GONE_CODES)


from_env, check_config = entry_points(parse_config, TwilioSmsSender)
