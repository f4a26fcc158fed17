"""TelegramSender against a fake Bot API server on 127.0.0.1."""

import logging
from collections.abc import Iterator

import pytest

from alerts.errors import UsageError
from alerts.senders import telegram
from alerts.senders.base import Outcome
from alerts.senders.provider import UNREACHABLE_COOLDOWN
from tests.fakes import ESCAPED_HEADLINE, HOSTILE_HEADLINE, free_port, outgoing
from tests.fakes.telegram_api import FakeTelegramApi

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TOKEN_SECRET = TOKEN.partition(":")[2]


def telegram_message(chat: str = "555001", **overrides: object):  # noqa: ANN201
    return outgoing(channel="telegram", destination=chat, **overrides)


@pytest.fixture
def api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi(TOKEN) as fake:
        yield fake


def make_sender(base_url: str, token: str = TOKEN, timeout: float = 5.0) -> telegram.TelegramSender:
    config = telegram.parse_config({"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE": base_url})
    assert config is not None
    return telegram.TelegramSender(config, timeout=timeout)


@pytest.fixture
def sender(api: FakeTelegramApi) -> Iterator[telegram.TelegramSender]:
    bot = make_sender(api.base_url)
    yield bot
    bot.close()


def test_sent_with_escaped_html_to_the_bot_api(api, sender):
    result = sender.send(telegram_message(headline=HOSTILE_HEADLINE, event_body="1 < 2 & 3 > 2"))

    assert result.outcome is Outcome.SENT
    assert result.provider_message_id == "101"
    [request] = api.requests
    assert request.method == "POST"
    assert request.path == f"/bot{TOKEN}/sendMessage"
    [params] = api.sent
    assert params["chat_id"] == "555001"
    assert params["parse_mode"] == "HTML"
    assert params["disable_web_page_preview"] is True
    assert f"<b>{ESCAPED_HEADLINE}</b>" in str(params["text"])
    assert "1 &lt; 2 &amp; 3 &gt; 2" in str(params["text"])
    assert result.retry_after is None


def test_429_is_transient_and_exposes_retry_after(api, sender):
    api.throttled_chats["555001"] = 7

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Telegram 429: Too Many Requests: retry after 7 (retry after 7s)"
    assert result.retry_after == 7 and result.throttled


def test_chat_not_found_is_permanent(api, sender):
    api.missing_chats.add("555001")

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.PERMANENT
    assert result.error == "Telegram 400: Bad Request: chat not found"


def test_bot_blocked_by_the_user_is_permanent(api, sender):
    api.blocked_chats.add("555001")

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.PERMANENT
    assert result.error == "Telegram 403: Forbidden: bot was blocked by the user"


def test_server_error_is_transient(api, sender):
    api.failing_chats.add("555001")

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Telegram 500: Internal Server Error"
    assert result.retry_after is None


def test_timeout_is_transient(api):
    api.delay = 1.0
    sender = make_sender(api.base_url, timeout=0.2)

    result = sender.send(telegram_message())
    sender.close()

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Telegram did not answer in time (timeout)"
    assert result.retry_after == UNREACHABLE_COOLDOWN


def test_connection_refused_is_transient():
    sender = make_sender(f"http://127.0.0.1:{free_port()}")

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.TRANSIENT
    assert (result.error or "").startswith("cannot reach Telegram: ConnectError")


def test_a_wrong_token_is_transient_and_says_which_setting(api):
    sender = make_sender(api.base_url, token="987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")

    result = sender.send(telegram_message())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Telegram 401: Unauthorized (check TELEGRAM_BOT_TOKEN)"


def test_an_invalid_chat_id_is_permanent_without_a_request(api, sender):
    result = sender.send(telegram_message(chat="not a chat"))

    assert result.outcome is Outcome.PERMANENT
    assert api.requests == []


def test_channel_usernames_are_chat_ids(api, sender):
    assert sender.send(telegram_message(chat="@alerts_channel")).outcome is Outcome.SENT


def test_the_bot_token_never_appears_in_errors_or_logs(api, caplog):
    """httpx logs every request URL at INFO and puts URLs in some errors; the token is in Telegram's URL."""
    caplog.set_level(logging.DEBUG)
    api.missing_chats.add("1")
    api.blocked_chats.add("2")
    api.throttled_chats["3"] = 7
    api.failing_chats.add("4")
    sender = make_sender(api.base_url)
    results = [sender.send(telegram_message(chat=chat)) for chat in ("1", "2", "3", "4", "5")]
    sender.close()
    results.append(make_sender(f"http://127.0.0.1:{free_port()}").send(telegram_message()))
    api.delay = 1.0
    results.append(make_sender(api.base_url, timeout=0.2).send(telegram_message()))
    with pytest.raises(UsageError) as bad_token:
        telegram.parse_config({"TELEGRAM_BOT_TOKEN": TOKEN + "!"})

    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT, Outcome.TRANSIENT,
                                            Outcome.TRANSIENT, Outcome.SENT, Outcome.TRANSIENT, Outcome.TRANSIENT]
    assert any(r.name == "httpx" for r in caplog.records), "httpx logged its requests"
    texts = [r.error or "" for r in results] + [str(bad_token.value), repr(sender), repr(sender.config)]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not [t for t in texts if TOKEN_SECRET in t]
    assert telegram.check_config({"TELEGRAM_BOT_TOKEN": TOKEN}) == \
        "telegram via https://api.telegram.org as bot 123456789"


def test_from_env_is_none_without_a_token():
    assert telegram.from_env({"TELEGRAM_API_BASE": "http://127.0.0.1:1"}) is None
    assert telegram.check_config({}) is None


@pytest.mark.parametrize(("env", "variable"), [
    ({"TELEGRAM_BOT_TOKEN": "bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": "123456789"}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": "ftp://api.telegram.org"}, "TELEGRAM_API_BASE"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": "https://u:p@api.telegram.org"}, "TELEGRAM_API_BASE"),
])
def test_malformed_settings_are_usage_errors_naming_the_variable(env, variable):
    with pytest.raises(UsageError, match=variable) as raised:
        telegram.from_env(env)
    assert TOKEN_SECRET not in str(raised.value)
