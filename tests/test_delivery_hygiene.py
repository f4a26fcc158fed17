"""What mail and chat providers expect of a sender at volume, through real servers on loopback:
one-click unsubscribe (RFC 8058) on every alert email, the headers of an automatic message
(RFC 3834), and destinations a provider said are gone for good never asked again."""

import hashlib
import hmac
import json
import re
import uuid
from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from alerts import message_settings, templates, unsubscribe
from alerts.senders import smtp_email
from alerts.senders.smtp_email import mailbox_gone
from alerts.senders.telegram import chat_gone
from alerts.senders.twilio_sms import NUMBER_GONE_CODES
from tests import seed
from tests.conftest import run_runner
from tests.fakes import outgoing
from tests.fakes.brevo_api import FakeBrevoApi
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi

SECRET = "unsubscribe-secret-for-tests-0123456789"
URL = "https://app.example.com/alerts/unsubscribe"
ONE_CLICK_ENV = {"ALERTS_UNSUBSCRIBE_URL": URL, "ALERTS_UNSUBSCRIBE_SECRET": SECRET}
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "f00dfeedcafe0123456789abcdef4242"
BREVO_KEY = "xkeysib-0123456789abcdef-test"
LINK = re.compile(r"https://app\.example\.com/alerts/unsubscribe\?token=([0-9]+\.email\.[A-Za-z0-9_-]{43})")


def _users(conn: psycopg.Connection, count: int, channels: tuple[str, ...]) -> list[int]:
    seed.population(conn, users=count, events=0, channels=channels)
    return [row[0] for row in conn.execute("SELECT id FROM users ORDER BY id").fetchall()]


def _alert(conn: psycopg.Connection, title: str) -> None:
    """A new high-impact event, turned into an alert and fanned out."""
    seed.event(conn, title=title)
    conn.execute("SELECT alerts_phase_a()")
    while not conn.execute("SELECT alerts_phase_b()").fetchone()[0].get("done", True):
        pass


def _smtp_env(smtp: FakeSmtpServer) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "Alerts <alerts@alerts.example.com>"}


def _statuses(conn: psycopg.Connection, title: str) -> dict[int, tuple[str, str | None]]:
    return {user: (status, error) for user, status, error in conn.execute(
        "SELECT d.user_id, d.status, d.last_error FROM user_alert_deliveries d"
        " JOIN alert_events ae ON ae.id = d.alert_event_id WHERE ae.headline = %s", [title]).fetchall()}


def _phase_c(db_url: str, env: dict[str, str]) -> dict:
    result = run_runner(db_url, "--phase", "c", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    return json.loads(result.stdout)


# --- one-click unsubscribe ---------------------------------------------------------------------

def test_every_alert_email_carries_one_click_unsubscribe_and_the_link_stops_that_users_next_email(conn, db_url):
    first, second, third = _users(conn, 3, ("email",))
    conn.execute("SELECT alerts_set_unsubscribe_secret(%s)", [SECRET])
    _alert(conn, "Refinery fire")
    with FakeSmtpServer() as smtp:
        _phase_c(db_url, {**_smtp_env(smtp), **ONE_CLICK_ENV})
        messages = list(smtp.messages)
    assert len(messages) == 3
    tokens = {}
    for received in messages:
        email = received.email
        header = email["List-Unsubscribe"]
        assert header.startswith("<") and header.endswith(">"), header
        link = header[1:-1]
        assert LINK.fullmatch(link), link
        token = parse_qs(urlsplit(link).query)["token"][0]
        assert link.endswith(token)  # the token ends the URL
        tokens[email["To"]] = token
        assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # the same link in the footer of both parts, escaped as HTML where it is HTML
        assert link in received.part("text/plain")
        assert f'href="{link}"' in received.part("text/html")
        # an automatic message, not a reply
        assert email["Auto-Submitted"] == "auto-generated"
        assert re.fullmatch(r"<alerts-v2-delivery-\d+@alerts\.example\.com>", email["Message-ID"])
        assert email["In-Reply-To"] is None and email["References"] is None
        assert not email["Subject"].lower().startswith(("re:", "fwd:", "fw:"))
    assert {t.split(".")[0] for t in tokens.values()} == {str(first), str(second), str(third)}

    # one character changed in the signature: refused, nothing changes
    good = tokens["u2@example.com"]
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    refused = conn.execute("SELECT alerts_unsubscribe(%s)", [tampered]).fetchone()[0]
    assert refused == {"ok": False, "reason": "bad signature"}
    # another user's id under a valid signature: refused too
    forged = f"{first}.email.{good.split('.')[2]}"
    assert conn.execute("SELECT alerts_unsubscribe(%s)", [forged]).fetchone()[0]["ok"] is False
    assert conn.execute("SELECT count(*) FROM alerts_channel_optouts").fetchone() == (0,)

    done = conn.execute("SELECT alerts_unsubscribe(%s)", [good]).fetchone()[0]
    assert done["ok"] is True and done["user_id"] == second and done["channel"] == "email" and done["changed"]
    again = conn.execute("SELECT alerts_unsubscribe(%s)", [good]).fetchone()[0]
    assert again["ok"] is True and again["changed"] is False  # idempotent

    _alert(conn, "Pipeline leak")
    assert set(_statuses(conn, "Pipeline leak")) == {first, third}  # Phase B made no email delivery for them
    with FakeSmtpServer() as smtp:
        _phase_c(db_url, {**_smtp_env(smtp), **ONE_CLICK_ENV})
        assert sorted(smtp.handler.rcpt_attempts) == ["u1@example.com", "u3@example.com"]


def test_an_email_queued_before_the_unsubscribe_is_skipped_unsent(conn, db_url):
    first, second = _users(conn, 2, ("email",))
    conn.execute("SELECT alerts_set_unsubscribe_secret(%s)", [SECRET])
    _alert(conn, "Strike at the port")
    token = unsubscribe.Unsubscribe(URL, SECRET).token(second, "email")
    assert conn.execute("SELECT alerts_unsubscribe(%s)", [token]).fetchone()[0]["ok"] is True
    with FakeSmtpServer() as smtp:
        counts = _phase_c(db_url, _smtp_env(smtp))
        assert smtp.handler.rcpt_attempts == ["u1@example.com"]
    assert counts["skipped_unsubscribed_or_suppressed"] == 1
    status, reason = _statuses(conn, "Strike at the port")[second]
    assert status == "skipped" and reason.startswith("unsubscribed: the user turned email alerts off")
    # turned back on by the host: the next alert reaches them again
    assert conn.execute("SELECT alerts_resubscribe(%s, 'email')", [second]).fetchone()[0]["changed"] is True
    _alert(conn, "Port reopens")
    assert set(_statuses(conn, "Port reopens")) == {first, second}


def test_a_digest_email_carries_one_click_unsubscribe(conn, db_url):
    seed.plan(conn, "personal", delivery_config={"email": {"enabled": True, "digest": True}})
    user = seed.user(conn, plan_code="personal", email="digest@example.com")
    seed.pref(conn, user)
    _alert(conn, "Event for the digest")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day'")
    conn.execute("SELECT alerts_phase_d()")
    with FakeSmtpServer() as smtp:
        _phase_c(db_url, {**_smtp_env(smtp), **ONE_CLICK_ENV})
        (received,) = smtp.messages
    email = received.email
    assert email["Message-ID"].startswith("<alerts-v2-digest-")
    assert email["List-Unsubscribe"] == f"<{unsubscribe.Unsubscribe(URL, SECRET).link(user)}>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Auto-Submitted"] == "auto-generated"


def test_brevo_email_carries_the_same_headers(conn, db_url):
    (user,) = _users(conn, 1, ("email",))
    _alert(conn, "Brevo alert")
    with FakeBrevoApi(BREVO_KEY) as brevo:
        _phase_c(db_url, {"BREVO_API_KEY": BREVO_KEY, "BREVO_BASE_URL": brevo.base_url,
                          "EMAIL_FROM": "alerts@alerts.example.com", **ONE_CLICK_ENV})
        (body,) = brevo.sent
    link = unsubscribe.Unsubscribe(URL, SECRET).link(user)
    assert body["headers"] == {"Message-ID": body["headers"]["Message-ID"], "Auto-Submitted": "auto-generated",
                               "List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert link in body["textContent"] and f'href="{link}"' in body["htmlContent"]


def test_without_the_variables_nothing_changes(conn, db_url):
    _users(conn, 1, ("email",))
    _alert(conn, "Plain alert")
    with FakeSmtpServer() as smtp:
        _phase_c(db_url, _smtp_env(smtp))
        email = smtp.messages[0].email
    assert email["List-Unsubscribe"] is None and email["List-Unsubscribe-Post"] is None
    assert "unsubscribe" not in smtp.messages[0].part("text/plain").lower()
    # a URL without the secret cannot sign: one line, exit 2, before anything is claimed
    result = run_runner(db_url, "--phase", "c", env={**_smtp_env(smtp), "ALERTS_UNSUBSCRIBE_URL": URL})
    assert result.returncode == 2 and "ALERTS_UNSUBSCRIBE_SECRET" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_teaches_the_engine_the_secret_and_a_run_with_another_says_so(db_url, conn):
    migrated = run_runner(db_url, "--migrate", env={"ALERTS_UNSUBSCRIBE_SECRET": SECRET}, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["unsubscribe_secret"] == "set"
    assert SECRET not in migrated.stdout + migrated.stderr
    _users(conn, 1, ("email",))
    token = unsubscribe.Unsubscribe(URL, SECRET).token(1, "email")
    assert conn.execute("SELECT alerts_unsubscribe(%s)", [token]).fetchone()[0]["ok"] is True

    same = run_runner(db_url, "--phase", "a", env={"ALERTS_UNSUBSCRIBE_SECRET": SECRET})
    other = run_runner(db_url, "--phase", "a", env={"ALERTS_UNSUBSCRIBE_SECRET": SECRET + "-rotated"})
    assert same.returncode == 0 and "ALERTS_UNSUBSCRIBE_SECRET" not in same.stderr, same.stderr
    assert other.returncode == 0, other.stderr
    lines = [line for line in other.stderr.splitlines() if "ALERTS_UNSUBSCRIBE_SECRET" in line]
    assert len(lines) == 1 and "differs" in lines[0] and SECRET not in other.stderr, other.stderr


@pytest.fixture
def one_click(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - yields nothing
    """The process's message settings with a one-click unsubscribe URL that has a query of its own."""
    monkeypatch.setenv("ALERTS_UNSUBSCRIBE_URL", URL + "?from=alert&v=1")
    monkeypatch.setenv("ALERTS_UNSUBSCRIBE_SECRET", SECRET)
    message_settings.current_settings.cache_clear()
    templates.clear_cache()
    yield
    message_settings.current_settings.cache_clear()
    templates.clear_cache()


@pytest.mark.parametrize("headline, body", [
    ("Pipeline outage", "Short ASCII lines."),  # 7bit text
    ("Grève au port de Marseille – flux arrêtés", "Réparations prévues sous 48 heures."),  # 8bit text
    ("Long report", "Flows stopped. " * 200),  # a line too long for 8bit: quoted-printable
    ("Забастовка", "Поставки газа остановлены на неопределённый срок. " * 40),  # mostly Cyrillic: base64
])
def test_each_recipients_link_survives_every_transfer_encoding(one_click, headline, body):
    """The part shared by an event's recipients carries marks replaced per recipient; the link must
    decode to itself whichever transfer encoding the email package chose for each part."""
    email_from = smtp_email.parse_email_from({"EMAIL_FROM": "alerts@alerts.example.com"}, "SMTP_URL")
    for user_id in (42, 1234):  # "=42" would decode as "B" if the link were not escaped
        message = outgoing(user_id=user_id, delivery_id=user_id, headline=headline, event_body=body)
        raw, _ = smtp_email.build_email(message, email_from)
        link = unsubscribe.Unsubscribe(URL + "?from=alert&v=1", SECRET).link(user_id)
        assert link.endswith(unsubscribe.Unsubscribe(URL, SECRET).token(user_id, "email"))
        email = message_from_bytes(raw, policy=policy.default)
        assert email["List-Unsubscribe"] == f"<{link}>"
        assert link in email.get_body(("plain",)).get_content()
        assert f'href="{link.replace("&", "&amp;")}"' in email.get_body(("html",)).get_content()
        assert f"Reference: delivery {user_id}" in email.get_body(("plain",)).get_content()
        headers, body_lines = raw.split(b"\r\n\r\n", 1)
        assert max(len(line) for line in headers.split(b"\r\n")) <= 998
        # no body line longer than the email package's own (78): the link is wrapped in quoted-printable
        assert max(len(line) for line in body_lines.split(b"\r\n")) <= 78


def test_tokens_are_hmac_sha256_as_python_computes_them(conn):
    # RFC 4231 test cases 1 and 6 (a key longer than the block)
    cases = [(b"\x0b" * 20, b"Hi There"),
             (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")]
    for key, message in cases:
        ours = conn.execute("SELECT alerts_hmac_sha256(%s, %s)", [key, message]).fetchone()[0]
        assert bytes(ours) == hmac.new(key, message, hashlib.sha256).digest()
    signed = conn.execute("SELECT alerts_unsubscribe_signature(%s, 42, 'email')", [SECRET]).fetchone()[0]
    assert signed == unsubscribe.signature(SECRET, 42, "email")
    assert conn.execute("SELECT alerts_secret_fingerprint(%s)", [SECRET]).fetchone()[0] == \
        unsubscribe.fingerprint(SECRET)


# --- suppression --------------------------------------------------------------------------------

def _suppressions(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return conn.execute("SELECT channel, destination, source FROM alerts_suppressions ORDER BY 1, 2").fetchall()


def test_a_chat_that_blocked_the_bot_is_never_asked_again(conn, db_url):
    first, second, third = _users(conn, 3, ("telegram",))
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN}
    with FakeTelegramApi(BOT_TOKEN) as telegram:
        env["TELEGRAM_API_BASE"] = telegram.base_url
        telegram.blocked_chats.add("100002")
        _alert(conn, "Alert one")
        counts = _phase_c(db_url, env)
        assert counts["destinations_suppressed"] == 1
        _alert(conn, "Alert two")
        counts = _phase_c(db_url, env)
        asked = [json.loads(r.body)["chat_id"] for r in telegram.requests]
        reached = sorted(str(m["chat_id"]) for m in telegram.sent)
    assert asked.count("100002") == 1  # the first alert only
    assert reached == ["100001", "100001", "100003", "100003"]  # both alerts reach the others
    assert counts["skipped_unsubscribed_or_suppressed"] == 1
    assert _suppressions(conn) == [("telegram", "100002", "provider")]
    assert _statuses(conn, "Alert one")[second][0] == "failed"
    status, reason = _statuses(conn, "Alert two")[second]
    assert status == "skipped" and reason.startswith("suppressed: the telegram destination is undeliverable")
    assert "bot was blocked by the user" in reason
    status_report = json.loads(run_runner(db_url, "--status").stdout)
    assert status_report["suppression"]["suppressed_destinations"] == {"telegram": 1}
    assert status_report["suppression"]["skipped_suppressed"] == 1


def test_an_unknown_mailbox_is_never_asked_again(conn, db_url):
    _users(conn, 3, ("email",))
    with FakeSmtpServer() as smtp:
        smtp.handler.refuse["u2@example.com"] = "550 5.1.1 <u2@example.com>: Recipient address rejected: User unknown"
        for title in ("Mail one", "Mail two"):
            _alert(conn, title)
            _phase_c(db_url, _smtp_env(smtp))
        attempts = list(smtp.handler.rcpt_attempts)
        delivered = sorted(m.email["To"] for m in smtp.messages)
    assert attempts.count("u2@example.com") == 1
    assert delivered == ["u1@example.com", "u1@example.com", "u3@example.com", "u3@example.com"]
    assert _suppressions(conn) == [("email", "u2@example.com", "provider")]


def test_a_number_that_replied_stop_is_never_asked_again(conn, db_url):
    _users(conn, 3, ("sms",))
    with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio.stopped_numbers.add("+15550000002")
        env = {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM": "+15017122661",
               "TWILIO_API_BASE": twilio.base_url, "ALERTS_RATE_LIMIT_SMS_PER_SECOND": "50"}
        for title in ("Text one", "Text two"):
            _alert(conn, title)
            _phase_c(db_url, env)
        asked = [r.form()["To"] for r in twilio.requests]
        reached = sorted(form["To"] for form in twilio.sent)
    assert asked.count("+15550000002") == 1
    assert reached == ["+15550000001", "+15550000001", "+15550000003", "+15550000003"]
    assert _suppressions(conn) == [("sms", "+15550000002", "provider")]


def test_answers_about_the_message_or_the_provider_never_suppress(conn, db_url):
    _users(conn, 6, ("email", "telegram", "sms"))
    _alert(conn, "Bad day for providers")
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as telegram, \
            FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        smtp.handler.refuse["u1@example.com"] = "550 5.7.1 Message rejected as spam by policy"
        smtp.handler.refuse["u2@example.com"] = "451 4.7.1 Greylisted, try again later"
        smtp.handler.refuse["u3@example.com"] = "552 5.2.2 Mailbox full"
        telegram.throttled_chats["100001"] = 3
        telegram.failing_chats.add("100002")
        twilio.throttled_numbers.add("+15550000001")
        twilio.failing_numbers.add("+15550000002")
        result = run_runner(db_url, "--phase", "c", env={
            **_smtp_env(smtp), "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_BASE": telegram.base_url,
            "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM": "+15017122661",
            "TWILIO_API_BASE": twilio.base_url, "ALERTS_RATE_LIMIT_SMS_PER_SECOND": "50"})
    assert result.returncode in (0, 4), result.stderr  # 429 holds a channel: exit 4
    errors = [e for (e,) in conn.execute("SELECT last_error FROM user_alert_deliveries WHERE last_error IS NOT NULL")]
    assert any("5.7.1" in e for e in errors) and any("429" in e for e in errors) and any("500" in e for e in errors)
    assert _suppressions(conn) == []


def test_the_senders_suppress_only_answers_about_the_destination():
    assert mailbox_gone(550, b"5.1.1 No such user") and mailbox_gone(550, "5.1.10 Recipient has a null MX")
    assert not mailbox_gone(550, b"5.7.1 Relaying denied") and not mailbox_gone(451, b"4.1.1 try later")
    assert not mailbox_gone(550, b"5.1.12 something else") and not mailbox_gone(552, b"5.2.2 Mailbox full")
    assert chat_gone(403, "Forbidden: bot was blocked by the user") and chat_gone(403, "Forbidden: user is deactivated")
    assert chat_gone(400, "Bad Request: chat not found")
    assert not chat_gone(400, "Bad Request: message is too long") and not chat_gone(429, "Too Many Requests")
    assert not chat_gone(500, "chat not found")
    assert NUMBER_GONE_CODES == {21610, 21211, 21614}


def test_a_new_destination_is_not_suppressed_and_a_dba_can_lift_one(conn, db_url):
    first, second = _users(conn, 2, ("telegram",))
    result = conn.execute("SELECT alerts_record_bounce('telegram', ' 100002 ', 'bot was blocked')").fetchone()[0]
    assert result == {"ok": True, "channel": "telegram", "destination": "100002", "changed": True}
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN}
    with FakeTelegramApi(BOT_TOKEN) as telegram:
        env["TELEGRAM_API_BASE"] = telegram.base_url
        _alert(conn, "Before the change")
        _phase_c(db_url, env)
        conn.execute("UPDATE users SET telegram_chat_id = '100099' WHERE id = %s", [second])
        _alert(conn, "After the change")
        _phase_c(db_url, env)
        lifted = conn.execute("SELECT alerts_unsuppress('telegram', '100002')").fetchone()[0]
        conn.execute("UPDATE users SET telegram_chat_id = '100002' WHERE id = %s", [second])
        _alert(conn, "After the lift")
        _phase_c(db_url, env)
        chats = [str(m["chat_id"]) for m in telegram.sent]
    assert chats.count("100002") == 1 and chats.count("100099") == 1 and chats.count("100001") == 3
    assert _statuses(conn, "Before the change")[second][0] == "skipped"
    assert lifted["changed"] is True and lifted["was"]["source"] == "bounce" and lifted["was"]["skipped"] == 1
    assert _suppressions(conn) == []


def test_a_bounce_recorded_by_email_address_is_case_blind(conn, db_url):
    _users(conn, 2, ("email",))
    bounce = conn.execute("SELECT alerts_record_bounce('email', 'U2@Example.COM', 'Brevo hard_bounce')").fetchone()[0]
    assert bounce["ok"] is True and bounce["destination"] == "u2@example.com"
    assert conn.execute("SELECT alerts_record_bounce('fax', 'x', 'y')").fetchone()[0]["ok"] is False
    assert conn.execute("SELECT alerts_record_bounce('email', ' ', 'y')").fetchone()[0]["ok"] is False
    _alert(conn, "After the bounce")
    with FakeSmtpServer() as smtp:
        _phase_c(db_url, _smtp_env(smtp))
        assert smtp.handler.rcpt_attempts == ["u1@example.com"]


# --- who may call what ---------------------------------------------------------------------------

@pytest.fixture
def login_in(admin_url: str, db_url: str):  # noqa: ANN201 - yields a factory
    """login_in(group) -> URL of a fresh LOGIN role that is a member of group."""
    created: list[str] = []

    def make(group: str) -> str:
        name = f"alerts_test_hyg_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(name),
                                                                            sql.Identifier(group)))
        created.append(name)
        return db_url.replace("://postgres@", f"://{name}@", 1)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in created:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_host_role_unsubscribes_and_records_bounces_and_nothing_more(conn, login_in):
    (user,) = _users(conn, 1, ("email",))
    conn.execute("SELECT alerts_set_unsubscribe_secret(%s)", [SECRET])
    host, runner, readonly = login_in("alerts_host"), login_in("alerts_runner"), login_in("alerts_readonly")
    token = unsubscribe.Unsubscribe(URL, SECRET).token(user, "email")
    with psycopg.connect(host, autocommit=True) as web:
        assert web.execute("SELECT alerts_unsubscribe(%s)", [token]).fetchone()[0]["ok"] is True
        assert web.execute("SELECT alerts_record_bounce('sms', '+15550000001', 'STOP')").fetchone()[0]["ok"] is True
    for statement in ("SELECT alerts_unsuppress('sms', '+15550000001')", "SELECT * FROM alerts_secrets",
                      "SELECT * FROM alerts_suppressions", "SELECT * FROM claim_deliveries(1)",
                      "SELECT alerts_set_unsubscribe_secret('x' || repeat('y', 20))"):
        assert _refused(host, statement), statement
    for statement in ("SELECT alerts_unsubscribe('1.email.x')", "SELECT alerts_record_bounce('sms', '+1555', 'x')",
                      "SELECT * FROM alerts_secrets", "SELECT alerts_set_unsubscribe_secret('x' || repeat('y', 20))",
                      "SELECT alerts_unsuppress('sms', '+15550000001')"):
        assert _refused(runner, statement), statement
    assert _refused(readonly, "SELECT * FROM alerts_secrets")
    with psycopg.connect(readonly, autocommit=True) as dashboard:
        assert dashboard.execute("SELECT alerts_suppression_status()").fetchone()[0]["suppressed_destinations"] == {
            "sms": 1}


def test_digests_are_skipped_for_an_unsubscribed_user_and_suppress_an_unknown_mailbox(conn, db_url):
    seed.plan(conn, "personal", delivery_config={"email": {"enabled": True, "digest": True}})
    leaving = seed.user(conn, plan_code="personal", email="leaving@example.com")
    gone = seed.user(conn, plan_code="personal", email="gone@example.com")
    for user in (leaving, gone):
        seed.pref(conn, user)
    _alert(conn, "Digest member")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day'")
    conn.execute("SELECT alerts_phase_d()")
    conn.execute("SELECT alerts_set_unsubscribe_secret(%s)", [SECRET])
    token = unsubscribe.Unsubscribe(URL, SECRET).token(leaving, "email")
    assert conn.execute("SELECT alerts_unsubscribe(%s)", [token]).fetchone()[0]["ok"] is True
    with FakeSmtpServer() as smtp:
        smtp.handler.refuse["gone@example.com"] = "550 5.1.1 No such user"
        counts = _phase_c(db_url, _smtp_env(smtp))
        assert smtp.handler.rcpt_attempts == ["gone@example.com"]
    assert counts["skipped_unsubscribed_or_suppressed"] == 1 and counts["destinations_suppressed"] == 1
    digests = dict(conn.execute("SELECT user_id, status FROM alert_digests").fetchall())
    assert digests == {leaving: "skipped", gone: "failed"}
    assert _statuses(conn, "Digest member")[leaving][0] == "skipped"
    assert _suppressions(conn) == [("email", "gone@example.com", "provider")]
