"""A fake Brevo transactional email API: POST /v3/smtp/email, answering as developers.brevo.com documents.

401 {"code": "unauthorized", ...} for a wrong api-key header; 400 {"code":
"invalid_parameter" | "missing_parameter", ...} for bad input; recipients in
throttled_recipients get 429 (with Retry-After), in failing_recipients 500, in
invalid_recipients 400 invalid_parameter; otherwise
201 {"messageId": "<...@smtp-relay.mailin.fr>"}.
"""

import itertools
import re

from tests.fakes import FakeHttpApi, RecordedRequest, Reply

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"code": code, "message": message}, headers or {})


class FakeBrevoApi(FakeHttpApi):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.throttled_recipients: set[str] = set()
        self.failing_recipients: set[str] = set()
        self.invalid_recipients: set[str] = set()
        self.retry_after_seconds = 3
        self.sent: list[dict[str, object]] = []  # the accepted request bodies
        self._ids = itertools.count(1)

    def respond(self, request: RecordedRequest) -> Reply:
        if request.path != "/v3/smtp/email" or request.method != "POST":
            return error(404, "not_found", "Invalid route")
        if request.headers.get("api-key") != self.api_key:
            return error(401, "unauthorized", "Key not found")
        try:
            body = request.json()
        except ValueError:
            return error(400, "bad_request", "Input must be a valid JSON object")
        problem = self.validate(body)
        if problem:
            return problem
        recipient = str(body["to"][0]["email"])  # type: ignore[index]
        if recipient in self.throttled_recipients:
            return error(429, "too_many_requests", "The expected rate limit is exceeded.",
                         {"Retry-After": str(self.retry_after_seconds),
                          "x-sib-ratelimit-reset": str(self.retry_after_seconds)})
        if recipient in self.failing_recipients:
            return error(500, "internal_error", "Internal server error")
        with self.lock:
            self.sent.append(body)
        return Reply(201, {"messageId": f"<20260101120000.{next(self._ids):011d}@smtp-relay.mailin.fr>"})

    def validate(self, body: object) -> Reply | None:
        if not isinstance(body, dict):
            return error(400, "bad_request", "Input must be a valid JSON object")
        sender = body.get("sender")
        if not isinstance(sender, dict) or not _EMAIL.match(str(sender.get("email", ""))):
            return error(400, "invalid_parameter", "valid sender email required")
        to = body.get("to")
        if not isinstance(to, list) or not to:
            return error(400, "missing_parameter", "to is missing")
        if not all(isinstance(r, dict) and _EMAIL.match(str(r.get("email", ""))) for r in to) \
                or any(r.get("email") in self.invalid_recipients for r in to):
            return error(400, "invalid_parameter", "email is not valid in to")
        if not body.get("subject"):
            return error(400, "missing_parameter", "subject is missing")
        if not (body.get("htmlContent") or body.get("textContent")):
            return error(400, "missing_parameter", "htmlContent or textContent is missing")
        return None
