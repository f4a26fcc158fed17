"""Messages a recipient can act on, end to end through the runner: when (UTC, a spike's reading time),
why it fired, the baseline, the source link from optional host columns; the file outbox carries
exactly what each provider receives; a runner login that may only execute the engine's functions gets
the facts too (alert_message_facts() reads them as the engine's owner)."""

import json
from datetime import UTC
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from alerts.delivery import Database
from alerts.event_facts import FACTS_SQL, FactsLoader
from alerts.templates import sms_segment_fits
from tests import seed
from tests.conftest import run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.telegram_api import FakeTelegramApi, html_problem
from tests.fakes.twilio_api import FakeTwilioApi

PREFERENCES = "https://app.example.com/settings/alerts"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeedcafe0123456789abcdef4242"


def _subscriber(conn: psycopg.Connection, *types: str) -> int:
    seed.plan(conn, "pro", delivery_config={"email": {"enabled": True}, "telegram": {"enabled": True},
                                            "sms": {"enabled": True}})
    user = seed.user(conn, telegram_chat_id="100200301", phone_number="+15550100301")
    for alert_type in types:
        seed.pref(conn, user, alert_type)
    return user


def _fan_out(conn: psycopg.Connection) -> None:
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")


def _send_to_outbox(db_url: str, tmp_path: Path, **env: str) -> dict[str, dict]:
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "c", env={"ALERTS_SENDER": f"file:{outbox}",
                                                      "ALERTS_PREFERENCES_URL": PREFERENCES, **env})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    return {f"{line['channel']}:{line['alert_event_id']}": line for line in lines} | {"_stderr": result.stderr}


def _utc(conn: psycopg.Connection, expression: str) -> str:
    (moment,) = conn.execute(f"SELECT {expression}").fetchone()
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_a_high_impact_message_says_when_and_links_the_source_from_optional_columns(conn, db_url, tmp_path):
    conn.execute("ALTER TABLE events ADD COLUMN occurred_at timestamptz, ADD COLUMN source_url text, "
                 "ADD COLUMN summary text, ADD COLUMN source text")
    _subscriber(conn, "HIGH_IMPACT_EVENT")
    event = seed.event(conn, title="Tanker seized near the Strait of Hormuz", region="Middle East",
                       category="shipping", severity=4)
    conn.execute("UPDATE events SET occurred_at = now() - interval '3 hours', summary = %s, source = 'Example News', "
                 "source_url = %s WHERE id = %s",
                 ["Naval forces boarded a tanker <b>overnight</b>.", "https://news.example.com/a?x=1&y=2", event])
    _fan_out(conn)

    lines = _send_to_outbox(db_url, tmp_path)

    occurred = _utc(conn, "occurred_at FROM events")
    email, telegram, sms = (lines[f"{c}:1"] for c in ("email", "telegram", "sms"))
    assert email["subject"] == "[High-impact event 4/5] Tanker seized near the Strait of Hormuz"
    assert "Naval forces boarded a tanker <b>overnight</b>." in email["body"]
    assert f"When:   {occurred} (alert raised " in email["body"]
    assert "Alert:  High-impact event, severity 4/5 (shipping)\nWhere:  Middle East\n" in email["body"]
    assert "Why:    severity 4/5 is at or above the high-impact level of 4/5" in email["body"]
    assert "Source: Example News: https://news.example.com/a?x=1&y=2" in email["body"]
    assert "Severity 4/5 event in Middle East" not in email["body"], "Phase A's text would only repeat the subject"
    assert f"Change or stop these alerts: {PREFERENCES}" in email["body"]
    assert '<a href="https://news.example.com/a?x=1&amp;y=2">Example News</a>' in email["html"]
    assert "tanker &lt;b&gt;overnight&lt;/b&gt;." in email["html"]
    assert f'<a href="{PREFERENCES}">' in email["html"]
    assert telegram["subject"] is None and telegram["parse_mode"] == "HTML" and html_problem(telegram["body"]) is None
    assert f"When: {occurred}" in telegram["body"] and "Source: Example News</a>" in telegram["body"]
    assert sms["subject"] is None and sms_segment_fits(sms["body"])
    assert sms["body"].startswith("High-impact 4/5: Tanker seized near the Strait of Hormuz. Middle East, ")


def test_without_optional_columns_the_time_is_the_events_row_and_nothing_is_linked(conn, db_url, tmp_path):
    _subscriber(conn, "HIGH_IMPACT_EVENT")
    seed.event(conn, title="Refinery fire", region="Europe", age="2 hours")
    _fan_out(conn)

    email = _send_to_outbox(db_url, tmp_path)["email:1"]

    raised = _utc(conn, "created_at FROM alert_events")
    assert f"When:   {_utc(conn, 'inserted_at FROM events')} (alert raised {raised})" in email["body"]
    assert "Source:" not in email["body"] and "<a href=\"https://news" not in email["html"]


def test_spike_messages_name_the_reading_time_the_threshold_and_the_baseline(conn, db_url, tmp_path):
    _subscriber(conn, "REGIONAL_RISK_SPIKE", "ASSET_RISK_SPIKE")
    seed.risk_index(conn, "Middle East", 58, age="1 day 2 hours")
    seed.risk_index(conn, "Middle East", 82, age="2 hours")
    seed.asset_risk(conn, "Europe", "gas", 61, age="1 day 1 hour")
    seed.asset_risk(conn, "Europe", "gas", 88, age="1 hour")
    _fan_out(conn)
    events = dict(conn.execute("SELECT alert_type, id FROM alert_events").fetchall())

    lines = _send_to_outbox(db_url, tmp_path)

    regional = lines[f"email:{events['REGIONAL_RISK_SPIKE']}"]
    reading = _utc(conn, "max(calculated_at) FROM risk_indices")
    previous = _utc(conn, "min(calculated_at) FROM risk_indices")
    assert regional["subject"] == "[Regional risk spike 4/5] 7-day risk index 82 (+24, +41%) in Middle East"
    assert f"When:   reading of {reading} (alert raised" in regional["body"]
    assert "Why:    the 7-day risk index reached 82, at or above the alert threshold of 70" in regional["body"]
    assert f"Before: 58 on {previous} (now 82, +24, +41%)" in regional["body"]
    asset = lines[f"email:{events['ASSET_RISK_SPIKE']}"]
    assert f"Before: 61 on {_utc(conn, 'min(calculated_at) FROM asset_risk')} (now 88, +27, +44%)" in asset["body"]
    assert "Why:    the 7-day gas risk score reached 88, at or above the alert threshold of 70" in asset["body"]
    asset_sms = lines[f"sms:{events['ASSET_RISK_SPIKE']}"]["body"]
    assert asset_sms.startswith("Gas risk spike 4/5: Europe 7-day gas risk score 88 (was 61) at ")
    assert asset_sms.endswith(" UTC. Alerts from 70.") and sms_segment_fits(asset_sms)


def test_a_regional_spike_that_fired_on_its_rise_says_so(conn, db_url, tmp_path):
    _subscriber(conn, "REGIONAL_RISK_SPIKE")
    seed.risk_index(conn, "Asia", 50, age="1 day 2 hours")
    seed.risk_index(conn, "Asia", 65, age="2 hours")
    _fan_out(conn)

    email = _send_to_outbox(db_url, tmp_path)["email:1"]

    assert "Why:    the 7-day risk index rose from 50 to 65, a rise of 20% or more fires an alert" in email["body"]
    assert "Before: 50 on " in email["body"]


@pytest.fixture
def runner_login(admin_url: str, db_url: str):
    name = "alerts_test_messages_runner_login"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE alerts_runner").format(sql.Identifier(name)))
    yield db_url.replace("://postgres@", f"://{name}@", 1)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_runner_login_that_may_only_execute_the_engines_functions_gets_the_facts(conn, runner_login, tmp_path):
    """alerts_runner may not read events, risk_indices or asset_risk: alert_message_facts() reads them
    as the engine's owner, so its messages say when and where from all the same."""
    conn.execute("ALTER TABLE events ADD COLUMN source_url text")
    _subscriber(conn, "HIGH_IMPACT_EVENT")
    event = seed.event(conn, title="Refinery fire", region="Europe", category="supply", age="2 hours")
    conn.execute("UPDATE events SET source_url = 'https://news.example.com/fire' WHERE id = %s", [event])
    _fan_out(conn)
    with psycopg.connect(runner_login) as runner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runner.execute("SELECT 1 FROM events")

    lines = _send_to_outbox(runner_login, tmp_path)

    email = lines["email:1"]
    assert f"When:   {_utc(conn, 'inserted_at FROM events')} (alert raised " in email["body"]
    assert "https://news.example.com/fire" in email["body"]
    assert "carry only what the claim returns" not in lines["_stderr"]
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [("sent", 3)]


def test_optional_event_columns_are_chosen_by_name_and_type(conn):
    """The first candidate column of the right type holds a fact; one of another type is passed over
    (source_url integer, occurred_at text), and a naive time is read as UTC."""
    conn.execute("ALTER TABLE events ADD COLUMN url text, ADD COLUMN source_url integer, "
                 "ADD COLUMN description varchar(200), ADD COLUMN published_at timestamp, "
                 "ADD COLUMN occurred_at text, ADD COLUMN source text")
    event = seed.event(conn, title="Pipeline explosion", region="Europe", severity=5)
    conn.execute("UPDATE events SET url = 'https://news.example.com/p', source_url = 7, description = 'Blast.', "
                 "published_at = '2026-11-30 06:00:00', occurred_at = 'yesterday', source = 'Example News' "
                 "WHERE id = %s", [event])
    conn.execute("SELECT alerts_phase_a()")
    row = conn.execute("SELECT occurred_at, summary, source_url, source_name FROM alert_message_facts(ARRAY[1])"
                       ).fetchone()
    assert row is not None
    occurred_at, summary, source_url, source_name = row
    assert occurred_at.astimezone(UTC).isoformat() == "2026-11-30T06:00:00+00:00"
    assert (summary, source_url, source_name) == ("Blast.", "https://news.example.com/p", "Example News")


class CountingDatabase(Database):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.statements: list[str] = []

    def rows(self, statement: object, params: list) -> list[dict]:  # type: ignore[override]
        self.statements.append("facts" if statement == FACTS_SQL else str(statement))
        return super().rows(statement, params)  # type: ignore[arg-type]


def test_facts_are_read_once_per_event_in_one_statement_per_batch(conn, db_url):
    _subscriber(conn, "HIGH_IMPACT_EVENT")
    for n in range(3):
        seed.event(conn, title=f"Event {n}")
    _fan_out(conn)
    tokens = {int(r[0]) for r in conn.execute("SELECT claim_token FROM claim_deliveries(10)")}
    db = CountingDatabase(db_url)
    loader = FactsLoader()
    try:
        loader.load(db, {1, 2}, tokens)
        loader.load(db, {1, 2, 3}, tokens)
        loader.load(db, {1, 2, 3}, tokens)
    finally:
        db.close()
    assert db.statements.count("facts") == 2  # {1, 2}, then {3} alone; nothing for the third call
    assert loader.get(3).occurred_at is not None and loader.get(99).occurred_at is None


def test_the_outbox_carries_exactly_what_each_provider_receives(conn, db_url, tmp_path):
    _subscriber(conn, "HIGH_IMPACT_EVENT", "ASSET_RISK_SPIKE")
    seed.event(conn, title='Pipeline <outage> & "leak" near Gdańsk', region="Europe")
    seed.asset_risk(conn, "Europe", "gas", 61, age="1 day 1 hour")
    seed.asset_risk(conn, "Europe", "gas", 91, age="1 hour")
    _fan_out(conn)
    env = {"ALERTS_PREFERENCES_URL": PREFERENCES}
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as telegram, FakeTwilioApi(SID, AUTH_TOKEN) as twilio:
        providers = {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com",
                     "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_BASE": telegram.base_url,
                     "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": "+15017122661",
                     "TWILIO_API_BASE": twilio.base_url, **env}
        result = run_runner(db_url, "--phase", "c", env=providers)
        assert result.returncode == 0, result.stderr
        emails = {m.email["Subject"]: m for m in smtp.messages}
        telegrams = [str(m["text"]) for m in telegram.sent]
        texts = [form["Body"] for form in twilio.sent]
    conn.execute("UPDATE user_alert_deliveries SET status = 'queued', sent_at = NULL, provider_message_id = NULL")

    outbox = [line for key, line in _send_to_outbox(db_url, tmp_path).items() if key != "_stderr"]

    assert len(outbox) == 6 and len(emails) == 2 and len(telegrams) == 2 and len(texts) == 2
    for line in outbox:
        if line["channel"] == "email":
            sent = emails[line["subject"]]  # SMTP carries text with CRLF line ends (RFC 5321), as it must
            received = (sent.part("text/plain").replace("\r\n", "\n"), sent.part("text/html").replace("\r\n", "\n"))
            assert received == (line["body"], line["html"])
        elif line["channel"] == "telegram":
            assert line["body"] in telegrams and line["parse_mode"] == "HTML"
        else:
            assert line["body"] in texts and sms_segment_fits(line["body"], segments=2)
    # 'ń' is outside GSM-7: that SMS is UCS-2 and takes two segments rather than lose the headline
    assert any(line["body"].startswith('High-impact 5/5: Pipeline <outage> & "leak" near Gdańsk. Europe, ')
               for line in outbox if line["channel"] == "sms")
