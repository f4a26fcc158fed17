"""A fake Telegram Bot API: POST /bot{token}/sendMessage, answering as core.telegram.org/bots/api documents.

Chats behave as configured: missing_chats -> 400 chat not found, blocked_chats -> 403 bot
blocked, throttled_chats -> 429 with parameters.retry_after, failing_chats -> 500. With
parse_mode=HTML the text is checked like Telegram does: only its few tags and the named
entities &lt; &gt; &amp; &quot; (plus numeric ones) are accepted, so unescaped source text
fails with 400 "can't parse entities".
"""

import html
import itertools
import re
import time

from tests.fakes import FakeHttpApi, RecordedRequest, Reply

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                "code", "pre", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9A-Fa-f]+);")
_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
# A made-up bot token in the Bot API's format, for runs against this fake (the bench's, for one).
FAKE_BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def error(code: int, description: str, **extra: object) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description, **extra})


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse text as HTML, or None."""
    for match in _TAG.finditer(text):
        if match.group(2).lower() not in ALLOWED_TAGS:
            return f'Unsupported start tag "{match.group(2)}" at byte offset {match.start()}'
    without_tags = _TAG.sub("", text)
    if "<" in without_tags or ">" in without_tags:
        return f"Unexpected end of name token at byte offset {without_tags.find('<')}"
    for position, char in enumerate(without_tags):
        if char == "&" and not _ENTITY.match(without_tags, position):
            return f"Unsupported entity at byte offset {position}"
    return None


class FakeTelegramApi(FakeHttpApi):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.missing_chats: set[str] = set()
        self.blocked_chats: set[str] = set()
        self.failing_chats: set[str] = set()
        self.throttled_chats: dict[str, int] = {}
        self.sent: list[dict[str, object]] = []  # the accepted sendMessage parameters
        self._ids = itertools.count(101)

    def respond(self, request: RecordedRequest) -> Reply:
        match = _PATH.match(request.path)
        if match is None:
            return error(404, "Not Found")
        if match["token"] != self.token:
            return error(401, "Unauthorized")
        if match["method"] != "sendMessage":
            return error(404, "Not Found")
        params = request.json() if "json" in request.headers.get("content-type", "") else request.form()
        return self.send_message(params)

    def send_message(self, params: dict[str, object]) -> Reply:
        chat = str(params.get("chat_id", ""))
        text = str(params.get("text") or "")
        if not chat:
            return error(400, "Bad Request: chat_id is empty")
        if not text.strip():
            return error(400, "Bad Request: message text is empty")
        if chat in self.throttled_chats:
            seconds = self.throttled_chats[chat]
            return error(429, f"Too Many Requests: retry after {seconds}", parameters={"retry_after": seconds})
        if chat in self.failing_chats:
            return error(500, "Internal Server Error")
        if chat in self.missing_chats:
            return error(400, "Bad Request: chat not found")
        if chat in self.blocked_chats:
            return error(403, "Forbidden: bot was blocked by the user")
        if str(params.get("parse_mode", "")).upper() == "HTML":
            problem = html_problem(text)
            if problem:
                return error(400, f"Bad Request: can't parse entities: {problem}")
            text = html.unescape(_TAG.sub("", text))
        if len(text) > 4096:
            return error(400, "Bad Request: message is too long")
        return self.accept(chat, text, params)

    def accept(self, chat: str, text: str, params: dict[str, object]) -> Reply:
        message_id = next(self._ids)
        with self.lock:
            self.sent.append(dict(params))
        chat_id: object = int(chat) if chat.lstrip("-").isdigit() else chat
        bot_id = int(self.token.partition(":")[0])
        return Reply(200, {"ok": True, "result": {
            "message_id": message_id,
            "from": {"id": bot_id, "is_bot": True, "first_name": "Alerts", "username": "alerts_test_bot"},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }})
