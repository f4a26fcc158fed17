"""TwilioSmsSender against a fake Twilio API server on 127.0.0.1."""

import base64
import logging
from collections.abc import Iterator

import pytest

from alerts.errors import UsageError
from alerts.senders import twilio_sms
from alerts.senders.base import Outcome
from tests.fakes import free_port, outgoing
from tests.fakes.twilio_api import FakeTwilioApi

SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeedcafe0123456789abcdef4242"
SENDER_NUMBER = "+15017122661"


def sms(number: str = "+447700900123", **overrides: object):  # noqa: ANN201
    return outgoing(channel="sms", destination=number, **overrides)


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(SID, AUTH_TOKEN) as fake:
        yield fake


def make_sender(base_url: str, token: str = AUTH_TOKEN, timeout: float = 5.0) -> twilio_sms.TwilioSmsSender:
    config = twilio_sms.parse_config({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": token,
                                      "TWILIO_FROM": SENDER_NUMBER, "TWILIO_API_BASE": base_url})
    assert config is not None
    return twilio_sms.TwilioSmsSender(config, timeout=timeout)


@pytest.fixture
def sender(api: FakeTwilioApi) -> Iterator[twilio_sms.TwilioSmsSender]:
    twilio = make_sender(api.base_url)
    yield twilio
    twilio.close()


def test_sent_as_a_form_with_basic_auth(api, sender):
    result = sender.send(sms("+44 7700 900-123", headline="Pipeline <outage> & more"))

    assert result.outcome is Outcome.SENT
    assert result.provider_message_id == "SM" + "1".rjust(32, "0")
    [request] = api.requests
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    [form] = api.sent
    assert form["To"] == "+447700900123"
    assert form["From"] == SENDER_NUMBER
    assert form["Body"] == "High-impact 4/5: Pipeline <outage> & more. europe (gas, oil)."


def test_a_long_alert_is_cut_to_fit(api, sender):
    result = sender.send(sms(headline="Very long headline " * 200, event_body="x" * 5000))

    assert result.outcome is Outcome.SENT
    [form] = api.sent
    assert len(form["Body"]) <= twilio_sms.BODY_MAX_CHARS and len(form["Body"]) <= 160
    assert form["Body"].endswith("... europe (gas, oil).")


def test_21211_invalid_number_is_permanent(api, sender):
    api.invalid_numbers.add("+15005550001")

    result = sender.send(sms("+15005550001"))

    assert result.outcome is Outcome.PERMANENT
    assert result.error == "Twilio 400 code 21211: The 'To' number +15005550001 is not a valid phone number."


def test_429_is_transient_with_retry_after(api, sender):
    api.throttled_numbers.add("+447700900123")

    result = sender.send(sms())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Twilio 429 code 20429: Too Many Requests"
    assert result.retry_after == 2 and result.throttled


def test_5xx_is_transient(api, sender):
    api.failing_numbers.add("+447700900123")

    result = sender.send(sms())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Twilio 500 code 20500: Internal Server Error"


def test_timeout_and_connection_errors_are_transient(api):
    refused = make_sender(f"http://127.0.0.1:{free_port()}").send(sms())
    api.delay = 1.0
    timed_out = make_sender(api.base_url, timeout=0.2).send(sms())

    assert refused.outcome is Outcome.TRANSIENT and (refused.error or "").startswith("cannot reach Twilio")
    assert timed_out.outcome is Outcome.TRANSIENT
    assert timed_out.error == "Twilio did not answer in time (timeout)"


def test_wrong_credentials_are_transient_and_say_which_settings(api):
    result = make_sender(api.base_url, token="0" * 32).send(sms())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Twilio 401 code 20003: Authenticate (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"


def test_something_that_is_not_a_phone_number_is_permanent_without_a_request(api, sender):
    result = sender.send(sms("call me maybe"))

    assert result.outcome is Outcome.PERMANENT
    assert api.requests == []


def test_the_auth_token_never_appears_in_errors_or_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.invalid_numbers.add("+15005550001")
    api.throttled_numbers.add("+15005550002")
    api.failing_numbers.add("+15005550003")
    sender = make_sender(api.base_url)
    results = [sender.send(sms(n)) for n in ("+15005550001", "+15005550002", "+15005550003", "+15005550004")]
    results.append(make_sender(f"http://127.0.0.1:{free_port()}").send(sms()))
    with pytest.raises(UsageError) as missing:
        twilio_sms.parse_config({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": SENDER_NUMBER})

    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.TRANSIENT,
                                            Outcome.SENT, Outcome.TRANSIENT]
    texts = [r.error or "" for r in results] + [str(missing.value), repr(sender), repr(sender.config), caplog.text]
    assert caplog.records
    assert not [t for t in texts if AUTH_TOKEN in t]


def test_from_env_is_none_without_twilio_settings():
    assert twilio_sms.from_env({"TWILIO_API_BASE": "http://127.0.0.1:1"}) is None
    assert twilio_sms.check_config({}) is None


@pytest.mark.parametrize(("env", "variable"), [
    ({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": SENDER_NUMBER}, "TWILIO_ACCOUNT_SID is not set"),
    ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_FROM": SENDER_NUMBER}, "TWILIO_AUTH_TOKEN is not set"),
    ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, "TWILIO_FROM is not set"),
    ({"TWILIO_ACCOUNT_SID": "SK123", "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": SENDER_NUMBER},
     "TWILIO_ACCOUNT_SID is malformed"),
    ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "not a token!", "TWILIO_FROM": SENDER_NUMBER},
     "TWILIO_AUTH_TOKEN is malformed"),
    ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": "0044 7700"}, "TWILIO_FROM="),
    ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": SENDER_NUMBER,
      "TWILIO_API_BASE": "twilio"}, "TWILIO_API_BASE"),
])
def test_malformed_settings_are_usage_errors_naming_the_variable(env, variable):
    with pytest.raises(UsageError, match=variable) as raised:
        twilio_sms.from_env(env)
    assert AUTH_TOKEN not in str(raised.value)


def test_check_config_describes_without_calling():
    env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": "AlertsV2"}
    assert twilio_sms.check_config(env) == f"sms via Twilio https://api.twilio.com account {SID} from AlertsV2"
