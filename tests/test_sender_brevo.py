"""BrevoEmailSender against a fake Brevo API server on 127.0.0.1."""

import logging
from collections.abc import Iterator

import pytest

from alerts.errors import UsageError
from alerts.senders import brevo_email
from alerts.senders.base import Outcome
from tests.fakes import ESCAPED_HEADLINE, HOSTILE_HEADLINE, free_port, outgoing
from tests.fakes.brevo_api import FakeBrevoApi

API_KEY = "xkeysib-0123456789abcdef0123456789abcdef-NotInLogs"
FROM = "Alerts v2 <alerts@alerts.example.com>"


@pytest.fixture
def api() -> Iterator[FakeBrevoApi]:
    with FakeBrevoApi(API_KEY) as fake:
        yield fake


def make_sender(base_url: str, api_key: str = API_KEY, timeout: float = 5.0) -> brevo_email.BrevoEmailSender:
    config = brevo_email.parse_config({"BREVO_API_KEY": api_key, "EMAIL_FROM": FROM, "BREVO_BASE_URL": base_url})
    assert config is not None
    return brevo_email.BrevoEmailSender(config, timeout=timeout)


@pytest.fixture
def sender(api: FakeBrevoApi) -> Iterator[brevo_email.BrevoEmailSender]:
    brevo = make_sender(api.base_url)
    yield brevo
    brevo.close()


def test_sent_with_recipient_subject_message_id_and_escaped_html(api, sender):
    result = sender.send(outgoing(delivery_id=42, destination="trader@example.com", headline=HOSTILE_HEADLINE))

    assert result.outcome is Outcome.SENT
    assert result.provider_message_id == "<20260101120000.00000000001@smtp-relay.mailin.fr>"
    [request] = api.requests
    assert (request.method, request.path) == ("POST", "/v3/smtp/email")
    assert request.headers["api-key"] == API_KEY
    [body] = api.sent
    assert body["sender"] == {"email": "alerts@alerts.example.com", "name": "Alerts v2"}
    assert body["to"] == [{"email": "trader@example.com"}]
    assert body["subject"] == f"[High-impact event 4/5] {HOSTILE_HEADLINE}"
    assert body["headers"] == {"Message-ID": "<alerts-v2-delivery-42@alerts.example.com>",
                               "Auto-Submitted": "auto-generated"}
    assert ESCAPED_HEADLINE in str(body["htmlContent"])
    assert "<script>" not in str(body["htmlContent"])
    assert HOSTILE_HEADLINE in str(body["textContent"])


def test_429_is_transient_with_retry_after(api, sender):
    api.throttled_recipients.add("trader@example.com")

    result = sender.send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Brevo 429 too_many_requests: The expected rate limit is exceeded."
    assert result.retry_after == 3 and result.throttled


def test_5xx_is_transient(api, sender):
    api.failing_recipients.add("trader@example.com")

    result = sender.send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Brevo 500 internal_error: Internal server error"


def test_400_is_permanent_with_brevos_code_and_message(api, sender):
    api.invalid_recipients.add("trader@example.com")

    result = sender.send(outgoing())

    assert result.outcome is Outcome.PERMANENT
    assert result.error == "Brevo 400 invalid_parameter: email is not valid in to"


def test_timeout_is_transient(api):
    api.delay = 1.0
    sender = make_sender(api.base_url, timeout=0.2)

    result = sender.send(outgoing())
    sender.close()

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Brevo did not answer in time (timeout)"


def test_connection_refused_is_transient():
    result = make_sender(f"http://127.0.0.1:{free_port()}").send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert (result.error or "").startswith("cannot reach Brevo: ConnectError")


def test_a_wrong_key_is_transient_and_says_which_setting(api):
    result = make_sender(api.base_url, api_key="xkeysib-wrong-key-0000").send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "Brevo 401 unauthorized: Key not found (check BREVO_API_KEY)"


def test_an_invalid_destination_is_permanent_without_a_request(api, sender):
    result = sender.send(outgoing(destination="nobody"))

    assert result.outcome is Outcome.PERMANENT
    assert api.requests == []


def test_the_api_key_never_appears_in_errors_or_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.throttled_recipients.add("a@example.com")
    api.failing_recipients.add("b@example.com")
    api.invalid_recipients.add("c@example.com")
    sender = make_sender(api.base_url)
    results = [sender.send(outgoing(destination=d)) for d in ("a@example.com", "b@example.com", "c@example.com")]
    results.append(make_sender(f"http://127.0.0.1:{free_port()}").send(outgoing()))

    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.PERMANENT,
                                            Outcome.TRANSIENT]
    texts = [r.error or "" for r in results] + [repr(sender), repr(sender.config), caplog.text]
    assert caplog.records
    assert not [t for t in texts if API_KEY in t]


def test_from_env_is_none_without_a_key():
    assert brevo_email.from_env({"EMAIL_FROM": FROM}) is None
    assert brevo_email.check_config({}) is None


@pytest.mark.parametrize(("env", "variable"), [
    ({"BREVO_API_KEY": API_KEY}, "EMAIL_FROM"),
    ({"BREVO_API_KEY": "short", "EMAIL_FROM": FROM}, "BREVO_API_KEY"),
    ({"BREVO_API_KEY": API_KEY, "EMAIL_FROM": FROM, "BREVO_BASE_URL": "api.brevo.com"}, "BREVO_BASE_URL"),
])
def test_malformed_settings_are_usage_errors_naming_the_variable(env, variable):
    with pytest.raises(UsageError, match=variable) as raised:
        brevo_email.from_env(env)
    assert API_KEY not in str(raised.value)


def test_check_config_describes_without_calling():
    assert brevo_email.check_config({"BREVO_API_KEY": API_KEY, "EMAIL_FROM": FROM}) == \
        "email via Brevo https://api.brevo.com from alerts@alerts.example.com"
