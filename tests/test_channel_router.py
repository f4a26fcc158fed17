"""ChannelRouter: one real sender per channel, chosen from the environment, against the fake providers."""

from collections.abc import Iterator

import pytest

from alerts.errors import UsageError
from alerts.senders import channels
from alerts.senders.base import Outcome, SendResult
from alerts.senders.brevo_email import BrevoEmailSender
from alerts.senders.smtp_email import SmtpEmailSender
from alerts.senders.telegram import TelegramSender
from alerts.senders.twilio_sms import TwilioSmsSender
from tests.fakes import outgoing
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeedcafe0123456789abcdef4242"
FROM = "alerts@alerts.example.com"


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def bot_api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi(TOKEN) as fake:
        yield fake


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(SID, AUTH_TOKEN) as fake:
        yield fake


def telegram_env(api: FakeTelegramApi) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": api.base_url}


def test_each_channel_goes_to_its_provider(smtp, bot_api, twilio_api):
    env = {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": FROM, **telegram_env(bot_api),
           "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": "+15017122661",
           "TWILIO_API_BASE": twilio_api.base_url}
    router = channels.from_env(env)
    assert router is not None

    results = [
        router.send(outgoing(delivery_id=1, channel="email", destination="trader@example.com")),
        router.send(outgoing(delivery_id=2, channel="telegram", destination="555001")),
        router.send(outgoing(delivery_id=3, channel="sms", destination="+447700900123")),
    ]
    router.flush()
    router.close()

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert results[0].provider_message_id == "<alerts-v2-delivery-1@alerts.example.com>"
    assert [m.rcpt_tos for m in smtp.messages] == [("trader@example.com",)]
    assert [p["chat_id"] for p in bot_api.sent] == ["555001"]
    assert [f["To"] for f in twilio_api.sent] == ["+447700900123"]
    assert router.configured_channels() == {"email", "telegram", "sms"}


def test_a_channel_without_a_sender_attempts_nothing(bot_api):
    router = channels.from_env(telegram_env(bot_api))
    assert router is not None

    with pytest.raises(channels.ChannelNotConfigured) as raised:
        router.send(outgoing(channel="sms", destination="+447700900123"))
    with pytest.raises(channels.ChannelNotConfigured):
        router.send(outgoing(channel="email", destination="trader@example.com"))
    router.close()

    assert isinstance(raised.value, channels.ChannelUnavailable)
    assert raised.value.channel == "sms"
    assert str(raised.value) == ("no sender is configured for channel 'sms': "
                                 "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM")
    assert router.configured_channels() == {"telegram"}
    assert bot_api.requests == []


def test_a_throttled_channel_is_held_for_retry_after_and_others_go_on(smtp, bot_api):
    senders = channels.senders_from_env({**telegram_env(bot_api), "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                                         "EMAIL_FROM": FROM})
    now = [1000.0]
    router = channels.ChannelRouter(senders, clock=lambda: now[0])
    bot_api.throttled_chats["555001"] = 7

    throttled = router.send(outgoing(channel="telegram", destination="555001"))
    assert throttled.retry_after == 7
    now[0] += 3
    assert router.held_for("telegram") == 4
    assert router.available_channels() == {"email"}
    with pytest.raises(channels.ChannelHeld) as held:
        router.send(outgoing(channel="telegram", destination="555002"))
    email = router.send(outgoing(channel="email"))
    assert len(bot_api.requests) == 1
    now[0] += 5
    assert router.available_channels() == {"email", "telegram"}
    after = router.send(outgoing(channel="telegram", destination="555002"))
    router.close()

    assert throttled.outcome is Outcome.TRANSIENT
    assert isinstance(held.value, channels.ChannelUnavailable)
    assert (held.value.channel, held.value.retry_after) == ("telegram", 4)
    assert str(held.value) == "telegram held: telegram asked us to wait, 4s left"
    assert email.outcome is Outcome.SENT
    assert after.outcome is Outcome.SENT
    assert len(bot_api.requests) == 2


def test_smtp_wins_over_brevo_and_brevo_is_the_fallback():
    both = {"SMTP_URL": "smtp://mail.example.com", "BREVO_API_KEY": "xkeysib-0123456789", "EMAIL_FROM": FROM}
    brevo_only = {"BREVO_API_KEY": "xkeysib-0123456789", "EMAIL_FROM": FROM}

    assert isinstance(channels.email_from_env(both), SmtpEmailSender)
    assert isinstance(channels.email_from_env(brevo_only), BrevoEmailSender)
    assert channels.email_from_env({"EMAIL_FROM": FROM}) is None
    assert channels.check_config(both)["email"] == (
        "email via SMTP smtp://mail.example.com (STARTTLS auto) from alerts@alerts.example.com "
        "(BREVO_API_KEY is ignored while SMTP_URL is set)")


def test_from_env_is_none_when_nothing_is_configured():
    assert channels.from_env({}) is None
    assert channels.check_config({}) == {
        "email": "not configured: set SMTP_URL (or BREVO_API_KEY) and EMAIL_FROM",
        "telegram": "not configured: set TELEGRAM_BOT_TOKEN",
        "sms": "not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM",
    }


def test_a_malformed_provider_setting_stops_everything():
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID}
    with pytest.raises(UsageError, match="TWILIO_AUTH_TOKEN is not set"):
        channels.from_env(env)
    with pytest.raises(UsageError, match="TWILIO_AUTH_TOKEN is not set"):
        channels.check_config(env)


def test_check_config_masks_every_secret():
    env = {"SMTP_URL": "smtps://alerts:SmtpSecret99@mail.example.com", "EMAIL_FROM": FROM,
           "TELEGRAM_BOT_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_FROM": "+15017122661"}

    report = channels.check_config(env)

    assert report == {
        "email": "email via SMTP smtps://alerts:***@mail.example.com (implicit TLS) from alerts@alerts.example.com",
        "telegram": "telegram via https://api.telegram.org as bot 123456789",
        "sms": f"sms via Twilio https://api.twilio.com account {SID} from +15017122661",
    }
    router = channels.from_env(env)
    assert router is not None
    assert isinstance(router.sender_for("telegram"), TelegramSender)
    assert isinstance(router.sender_for("sms"), TwilioSmsSender)
    router.close()


class Recorder:
    """A collaborator for flush/close: records calls, optionally fails."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls: list[str] = []

    def send(self, message: object) -> SendResult:
        return SendResult.sent(self.name)

    def flush(self) -> None:
        self.calls.append("flush")
        if self.fail:
            raise OSError(f"{self.name} could not flush")

    def close(self) -> None:
        self.calls.append("close")
        if self.fail:
            raise OSError(f"{self.name} could not close")


def test_flush_and_close_reach_every_sender_and_raise_the_first_error():
    first, second, third = Recorder("a", fail=True), Recorder("b"), Recorder("c", fail=True)
    router = channels.ChannelRouter({"email": first, "telegram": second, "sms": third})

    with pytest.raises(OSError, match="a could not flush"):
        router.flush()
    with pytest.raises(OSError, match="a could not close"):
        router.close()

    assert first.calls == second.calls == third.calls == ["flush", "close"]
