"""A fake Twilio Messages API: POST /2010-04-01/Accounts/{sid}/Messages.json, answering as twilio.com/docs documents.

Basic auth sid:token (401 code 20003 otherwise); form fields To, From, Body; 400 code
21211 for a To that is not an E.164 number (or is in invalid_numbers), 21602 for no
Body, 21617 for a Body over 1600 characters; stopped_numbers (the recipient replied STOP) ->
400 code 21610, landline_numbers -> 400 code 21614; throttled_numbers -> 429 code 20429,
failing_numbers -> 500; otherwise 201 with the message resource.
"""

import base64
import itertools
import re
from datetime import UTC, datetime
from email.utils import format_datetime

from tests.fakes import FakeHttpApi, RecordedRequest, Reply

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})/Messages\.json$")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"code": code, "message": message,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}, headers or {})


class FakeTwilioApi(FakeHttpApi):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.invalid_numbers: set[str] = set()
        self.stopped_numbers: set[str] = set()
        self.landline_numbers: set[str] = set()
        self.throttled_numbers: set[str] = set()
        self.failing_numbers: set[str] = set()
        self.sent: list[dict[str, str]] = []  # the accepted form fields
        self._ids = itertools.count(1)

    def authorised(self, request: RecordedRequest, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return sid == self.account_sid and request.headers.get("authorization") == f"Basic {expected}"

    def respond(self, request: RecordedRequest) -> Reply:
        match = _PATH.match(request.path)
        if match is None or request.method != "POST":
            return error(404, 20404, f"The requested resource {request.path} was not found")
        if not self.authorised(request, match["sid"]):
            return error(401, 20003, "Authenticate")
        form = request.form()
        to, body = form.get("To", ""), form.get("Body", "")
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to) or to in self.invalid_numbers:
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.stopped_numbers:
            return error(400, 21610, "Attempt to send to unsubscribed recipient")
        if to in self.landline_numbers:
            return error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if not body:
            return error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in self.throttled_numbers:
            return error(429, 20429, "Too Many Requests", {"Retry-After": "2"})
        if to in self.failing_numbers:
            return error(500, 20500, "Internal Server Error")
        with self.lock:
            self.sent.append(form)
        return Reply(201, self.resource(form))

    def resource(self, form: dict[str, str]) -> dict[str, object]:
        sid = f"SM{next(self._ids):032x}"
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return {
            "sid": sid, "account_sid": self.account_sid, "to": form["To"], "from": form.get("From"),
            "body": form["Body"], "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "date_created": now, "date_updated": now, "date_sent": None, "price": None, "error_code": None,
            "error_message": None, "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
