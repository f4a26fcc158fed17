"""SmtpEmailSender against a real SMTP server (aiosmtpd) on 127.0.0.1."""

import logging
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.errors import UsageError
from alerts.senders import smtp_email
from alerts.senders.base import Outcome
from alerts.senders.provider import UNREACHABLE_COOLDOWN
from tests.fakes import ESCAPED_HEADLINE, HOSTILE_HEADLINE, free_port, outgoing
from tests.fakes.smtp_server import FakeSmtpServer, self_signed_certificate, server_context

PASSWORD = "Sm7p-pa55word-n0t-in-logs"
FROM = "Alerts v2 <alerts@alerts.example.com>"


def sender_for(url: str, ssl_context: ssl.SSLContext | None = None) -> smtp_email.SmtpEmailSender:
    config = smtp_email.parse_config({"SMTP_URL": url, "EMAIL_FROM": FROM})
    assert config is not None
    return smtp_email.SmtpEmailSender(config, ssl_context=ssl_context)


@pytest.fixture
def server() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as smtp:
        yield smtp


@pytest.fixture
def sender(server: FakeSmtpServer) -> Iterator[smtp_email.SmtpEmailSender]:
    smtp = sender_for(f"smtp://127.0.0.1:{server.port}?timeout=5")
    yield smtp
    smtp.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate: apt-get install openssl",
                    pytrace=False)
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_email_arrives_with_recipient_subject_message_id_and_escaped_html(server, sender):
    result = sender.send(outgoing(delivery_id=42, destination="trader@example.com", headline=HOSTILE_HEADLINE,
                                  event_body="Body with <b>tags</b> & more"))

    assert result.outcome is Outcome.SENT
    assert result.provider_message_id == "<alerts-v2-delivery-42@alerts.example.com>"
    [received] = server.messages
    assert received.rcpt_tos == ("trader@example.com",)
    assert received.mail_from == "alerts@alerts.example.com"
    email = received.email
    assert email["To"] == "trader@example.com"
    assert email["From"] == FROM
    assert email["Message-ID"] == "<alerts-v2-delivery-42@alerts.example.com>"
    assert email["Subject"] == f"[High-impact event 4/5] {HOSTILE_HEADLINE}"
    assert email.get_content_type() == "multipart/alternative"
    html = received.part("text/html")
    assert ESCAPED_HEADLINE in html
    assert "<script>" not in html
    assert "Body with &lt;b&gt;tags&lt;/b&gt; &amp; more" in html
    assert HOSTILE_HEADLINE in received.part("text/plain")


def test_a_repeat_of_the_same_delivery_has_the_same_message_id(server, sender):
    first = sender.send(outgoing(delivery_id=9, attempt=1))
    second = sender.send(outgoing(delivery_id=9, attempt=2))

    assert first.provider_message_id == second.provider_message_id
    assert [m.email["Message-ID"] for m in server.messages] == ["<alerts-v2-delivery-9@alerts.example.com>"] * 2


def test_one_connection_serves_a_whole_batch(server, sender):
    results = [sender.send(outgoing(delivery_id=i, destination=f"user{i}@example.com")) for i in range(1, 4)]

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert len({m.peer for m in server.messages}) == 1


def test_reconnects_when_the_server_hung_up_between_messages(server, sender):
    server.handler.drop_after_data = True

    results = [sender.send(outgoing(delivery_id=i)) for i in range(1, 4)]

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert len({m.peer for m in server.messages}) == 3


def test_550_recipient_refused_is_permanent_and_the_batch_goes_on(server, sender):
    server.handler.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected"

    refused = sender.send(outgoing(delivery_id=1, destination="gone@example.com"))
    after = sender.send(outgoing(delivery_id=2, destination="here@example.com"))

    assert refused.outcome is Outcome.PERMANENT
    assert refused.error == "SMTP 550 5.1.1 <gone@example.com>: Recipient address rejected (recipient refused)"
    assert after.outcome is Outcome.SENT
    assert [m.rcpt_tos for m in server.messages] == [("here@example.com",)]
    assert len({m.peer for m in server.messages}) == 1


def test_451_is_transient(server, sender):
    server.handler.refuse["busy@example.com"] = "451 4.7.1 Greylisted, try again later"

    result = sender.send(outgoing(destination="busy@example.com"))

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None and result.error.startswith("SMTP 451 4.7.1 Greylisted")
    assert server.messages == []


def test_unreachable_server_is_transient_and_asks_for_a_pause():
    sender = sender_for(f"smtp://127.0.0.1:{free_port()}?timeout=2")

    result = sender.send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None and result.error.startswith("cannot reach SMTP server 127.0.0.1:")
    assert result.retry_after == UNREACHABLE_COOLDOWN


def test_a_server_that_never_answers_times_out_as_transient():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never greets
    port = listener.getsockname()[1]
    try:
        sender = sender_for(f"smtp://127.0.0.1:{port}?timeout=0.5")
        result = sender.send(outgoing())
    finally:
        listener.close()

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == f"SMTP server 127.0.0.1:{port} timed out after 0.5s"


def test_an_invalid_destination_is_permanent_without_contacting_the_server(server, sender):
    for destination in ("not-an-address", "a@example.com\r\nBcc: victim@example.com", ""):
        result = sender.send(outgoing(destination=destination))
        assert result.outcome is Outcome.PERMANENT, destination
        assert result.error in ("email destination not a valid email address", "user has no email destination")
    assert server.messages == []


def test_login_with_the_right_password_sends():
    with FakeSmtpServer(users={"alerts": PASSWORD}) as server:
        sender = sender_for(f"smtp://alerts:{PASSWORD}@127.0.0.1:{server.port}")
        result = sender.send(outgoing())
        sender.close()

    assert result.outcome is Outcome.SENT
    assert server.handler.auth_attempts == ["alerts"]
    assert len(server.messages) == 1


def test_smtp_password_never_appears_in_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    results = []
    with FakeSmtpServer(users={"alerts": "the-real-one"}) as server:
        server.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
        wrong = sender_for(f"smtp://alerts:{PASSWORD}@127.0.0.1:{server.port}")
        results.append(wrong.send(outgoing()))
        wrong.close()
    results.append(sender_for(f"smtp://alerts:{PASSWORD}@127.0.0.1:{free_port()}").send(outgoing()))
    with pytest.raises(UsageError) as bad_url:
        smtp_email.parse_config({"SMTP_URL": f"smtp://alerts:{PASSWORD}@host:99999", "EMAIL_FROM": FROM})

    assert results[0].outcome is Outcome.TRANSIENT
    assert results[0].error is not None and "check the user and password in SMTP_URL" in results[0].error
    assert results[1].outcome is Outcome.TRANSIENT
    texts = [r.error or "" for r in results] + [str(bad_url.value)] + [r.getMessage() for r in caplog.records]
    assert caplog.records, "the failures were logged"
    assert not [t for t in texts if PASSWORD in t]
    assert repr(sender_for(f"smtp://alerts:{PASSWORD}@127.0.0.1:1")).count(PASSWORD) == 0
    assert PASSWORD not in repr(smtp_email.parse_config({"SMTP_URL": f"smtp://u:{PASSWORD}@h", "EMAIL_FROM": FROM}))


def test_starttls_require_refuses_a_server_without_starttls(server):
    sender = sender_for(f"smtp://127.0.0.1:{server.port}?starttls=require")

    result = sender.send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert "does not offer STARTTLS" in (result.error or "")
    assert server.messages == []


def test_starttls_is_used_when_the_server_offers_it(certificate):
    cert, key = certificate
    client = ssl.create_default_context(cafile=str(cert))
    with FakeSmtpServer(users={"alerts": PASSWORD}, tls_context=server_context(cert, key)) as server:
        sender = sender_for(f"smtp://alerts:{PASSWORD}@127.0.0.1:{server.port}", ssl_context=client)
        result = sender.send(outgoing())
        sender.close()

    assert result.outcome is Outcome.SENT
    assert [m.tls for m in server.messages] == [True]


def test_starttls_with_an_untrusted_certificate_is_transient(certificate):
    cert, key = certificate
    with FakeSmtpServer(tls_context=server_context(cert, key)) as server:
        result = sender_for(f"smtp://127.0.0.1:{server.port}").send(outgoing())  # system CAs only

    assert result.outcome is Outcome.TRANSIENT
    assert "SSLCertVerificationError" in (result.error or "")
    assert server.messages == []


def test_smtps_is_tls_from_the_first_byte(certificate):
    cert, key = certificate
    client = ssl.create_default_context(cafile=str(cert))
    with FakeSmtpServer(smtps_context=server_context(cert, key)) as server:
        sender = sender_for(f"smtps://127.0.0.1:{server.port}", ssl_context=client)
        result = sender.send(outgoing())
        sender.close()

    assert result.outcome is Outcome.SENT
    assert [m.tls for m in server.messages] == [True]


def test_the_password_is_never_sent_in_clear_to_a_host_not_known_as_loopback():
    # "127.1" reaches 127.0.0.1 through the resolver but is not a literal loopback address or "localhost",
    # so the sender must treat it like any remote host name.
    alias = "127.1"
    with FakeSmtpServer(users={"alerts": PASSWORD}) as server:
        result = sender_for(f"smtp://alerts:{PASSWORD}@{alias}:{server.port}").send(outgoing())

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == f"refusing to send the SMTP password unencrypted to {alias}: " \
                           "use smtps:// or a server that offers STARTTLS"
    assert server.handler.auth_attempts == []


def test_is_loopback():
    assert smtp_email.is_loopback("127.0.0.1") and smtp_email.is_loopback("::1")
    assert smtp_email.is_loopback("localhost")
    assert not smtp_email.is_loopback("mail.example.com") and not smtp_email.is_loopback("10.0.0.1")


def test_from_env_is_none_without_smtp_url():
    assert smtp_email.from_env({"EMAIL_FROM": FROM}) is None
    assert smtp_email.check_config({}) is None


@pytest.mark.parametrize(("env", "names"), [
    ({"SMTP_URL": "http://host"}, "SMTP_URL"),
    ({"SMTP_URL": "smtp://host:notaport"}, "SMTP_URL"),
    ({"SMTP_URL": "smtp://host?starttls=maybe"}, "starttls"),
    ({"SMTP_URL": "smtps://host?starttls=require"}, "starttls"),
    ({"SMTP_URL": "smtp://host?tls=1"}, "unknown query flag 'tls'"),
    ({"SMTP_URL": "smtp://host?timeout=0"}, "timeout"),
    ({"SMTP_URL": "smtp://host/path"}, "path"),
    ({"SMTP_URL": "smtp://host", "EMAIL_FROM": ""}, "EMAIL_FROM is not set"),
    ({"SMTP_URL": "smtp://host", "EMAIL_FROM": "not an address"}, "EMAIL_FROM="),
])
def test_malformed_settings_are_usage_errors_naming_the_variable(env, names):
    env = {"EMAIL_FROM": FROM, **env}
    with pytest.raises(UsageError, match=names):
        smtp_email.from_env(env)
    with pytest.raises(UsageError):
        smtp_email.check_config(env)


def test_check_config_describes_without_connecting():
    port = free_port()  # nothing listens there: check_config must not try
    summary = smtp_email.check_config({"SMTP_URL": f"smtp://alerts:{PASSWORD}@127.0.0.1:{port}?starttls=require",
                                       "EMAIL_FROM": FROM})
    assert summary == (f"email via SMTP smtp://alerts:***@127.0.0.1:{port}?starttls=require (STARTTLS require) "
                       "from alerts@alerts.example.com")
    assert smtp_email.check_config({"SMTP_URL": "smtps://mail.example.com", "EMAIL_FROM": FROM}) == \
        "email via SMTP smtps://mail.example.com (implicit TLS) from alerts@alerts.example.com"


def test_default_ports_and_percent_encoded_password():
    config = smtp_email.parse_config({"SMTP_URL": "smtp://me%40example.com:p%40ss%3Aw@mail.example.com",
                                      "EMAIL_FROM": FROM})
    assert config is not None
    assert (config.port, config.username, config.password) == (587, "me@example.com", "p@ss:w")
    smtps = smtp_email.parse_config({"SMTP_URL": "smtps://mail.example.com", "EMAIL_FROM": FROM})
    assert smtps is not None and smtps.port == 465


def test_close_is_safe_twice_and_before_any_send(server):
    sender = sender_for(f"smtp://127.0.0.1:{server.port}")
    sender.close()
    sender.send(outgoing())
    sender.close()
    sender.close()
    assert len(server.messages) == 1


@pytest.mark.parametrize("headline", ["Pipeline outage", "Gazoduc coupé à Zeebrugge – 40 % des flux"])
def test_recipients_of_one_event_each_get_their_own_reference(server, sender, headline):
    """The MIME part is built once per event text; each recipient's reference is filled in."""
    for delivery_id in (7, 8, 9):
        assert sender.send(outgoing(delivery_id=delivery_id, destination=f"u{delivery_id}@example.com",
                                    headline=headline)).outcome is Outcome.SENT
    for delivery_id, received in zip((7, 8, 9), server.messages, strict=True):
        email = received.email
        assert email["To"] == f"u{delivery_id}@example.com"
        assert email["Message-ID"] == f"<alerts-v2-delivery-{delivery_id}@alerts.example.com>"
        assert headline in email["Subject"]
        for part in ("text/plain", "text/html"):
            text = received.part(part)
            assert f"Reference: delivery {delivery_id}" in text and smtp_email.REFERENCE_MARK not in text
