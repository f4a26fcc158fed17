"""Phase C through the real providers (SMTP, Telegram) against servers on loopback: what each
outcome does to the row, an unconfigured channel stays queued and turns the run red, secrets stay hidden."""

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

from tests import seed
from tests.conftest import ROOT, run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.telegram_api import FakeTelegramApi

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


@pytest.fixture
def queued(conn: psycopg.Connection) -> psycopg.Connection:
    """Three users, one event, email + telegram + sms enabled: nine queued deliveries."""
    seed.population(conn, users=3, events=1, channels=("email", "telegram", "sms"))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    return conn


def _env(smtp: FakeSmtpServer, telegram: FakeTelegramApi) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_BASE": telegram.base_url}


def _rows(conn: psycopg.Connection) -> dict[tuple[str, int], tuple]:
    return {(channel, user): (status, error) for channel, user, status, error in conn.execute(
        "SELECT channel, user_id, status, last_error FROM user_alert_deliveries").fetchall()}


def test_configured_channels_are_delivered_and_the_unconfigured_one_stays_queued(queued, db_url):
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as telegram:
        result = run_runner(db_url, "--phase", "c", env=_env(smtp, telegram))
        received = sorted(m.email["To"] for m in smtp.messages)
        chats = sorted(str(m["chat_id"]) for m in telegram.sent)
    assert result.returncode == 1, result.stderr
    counts = json.loads(result.stdout)
    assert counts["sent"] == 6 and counts["channels_not_configured"] == {"sms": 3}
    assert "sms" in result.stderr.splitlines()[-1] and "TWILIO" in result.stderr
    assert received == ["u1@example.com", "u2@example.com", "u3@example.com"]
    assert chats == ["100001", "100002", "100003"]
    statuses = queued.execute("SELECT channel, status, attempts, count(*) FROM user_alert_deliveries "
                              "GROUP BY 1, 2, 3 ORDER BY 1").fetchall()
    assert statuses == [("email", "sent", 1, 3), ("sms", "queued", 0, 3), ("telegram", "sent", 1, 3)]
    # the run that exited 1 is recorded as failed, and --status says so
    run = queued.execute("SELECT status, error FROM alerts_runs WHERE phase = 'c'").fetchone()
    assert run[0] == "failed" and "sms" in run[1], run
    status = run_runner(db_url, "--status")
    assert status.returncode == 1 and json.loads(status.stdout)["healthy"] is False, status.stdout
    assert any("phase c run failed" in breach for breach in json.loads(status.stdout)["breaches"])


def test_a_provider_that_goes_away_mid_run_turns_the_run_red_with_exit_4(conn, db_url):
    """The SMTP server stops answering after some messages: the rest stay queued (no attempt used),
    the counts say which channel was held and why, and the run exits 4, not 0."""
    seed.population(conn, users=40, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    smtp = FakeSmtpServer()
    smtp.handler.data_delay = 0.05
    with smtp:
        runner = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT,
                                  env={**_runner_env(db_url), "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                                       "EMAIL_FROM": "alerts@example.com", "ALERTS_BATCH_SIZE": "10"},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while len(smtp.messages) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    # the server is gone now, in the middle of the run
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 4, (out, err)
    counts = json.loads(out.splitlines()[-1])
    assert "email" in counts["channels_unavailable"] and counts["channels_held"]["email"] > 0, counts
    assert "Traceback" not in err and err.splitlines()[-1].startswith("runner.py: error:"), err
    left = conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1 ORDER BY 1").fetchall()
    assert 10 <= dict(left)["sent"] <= len(smtp.messages), left
    assert sum(n for _, n in left) == 40 and "failed" not in dict(left), left
    assert conn.execute("SELECT status FROM alerts_runs WHERE phase = 'c'").fetchone() == ("failed",)


def test_each_provider_answer_ends_in_the_right_status(queued, db_url):
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as telegram:
        smtp.handler.refuse["u1@example.com"] = "550 5.1.1 No such user"
        smtp.handler.refuse["u2@example.com"] = "451 4.7.1 Try again later"
        telegram.missing_chats.add("100001")
        telegram.throttled_chats["100002"] = 7
        result = run_runner(db_url, "--phase", "c", env={**_env(smtp, telegram), "ALERTS_SENDER": ""})
    assert result.returncode == 1  # sms is not configured
    rows = _rows(queued)
    assert rows[("email", 1)][0] == "failed" and "550" in rows[("email", 1)][1]
    assert rows[("email", 2)][0] == "queued" and "451" in rows[("email", 2)][1]
    assert rows[("email", 3)] == ("sent", None)
    assert rows[("telegram", 1)][0] == "failed" and "chat not found" in rows[("telegram", 1)][1]
    assert rows[("telegram", 2)][0] == "queued" and "429" in rows[("telegram", 2)][1]
    waiting = queued.execute("SELECT count(*) FROM user_alert_deliveries "
                             "WHERE status = 'queued' AND next_retry_at > now()").fetchone()
    assert waiting == (2,)
    everything = result.stdout + result.stderr + json.dumps(
        queued.execute("SELECT array_agg(last_error) FROM user_alert_deliveries").fetchone()[0])
    assert BOT_TOKEN not in everything and BOT_TOKEN.split(":")[1] not in everything


def test_preflight_checks_settings_without_sending(queued, db_url):
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as telegram:
        result = run_runner(db_url, "--preflight", env=_env(smtp, telegram))
        assert smtp.messages == [] and telegram.requests == []
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["preflight"] == "ok" and report["channels"]["sms"].startswith("not configured")
    assert BOT_TOKEN not in result.stdout
    assert queued.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'").fetchone() == (9,)


def test_preflight_refuses_a_malformed_setting(db_url):
    result = run_runner(db_url, "--preflight", env={"SMTP_URL": "smtp://user:s3cretpw@", "EMAIL_FROM": "a@b.c"})
    assert result.returncode == 2 and "SMTP_URL" in result.stderr and "s3cretpw" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_per_minute_rate_limit_holds_the_rest_for_the_next_run(conn, db_url):
    seed.population(conn, users=5, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    with FakeSmtpServer() as smtp:
        result = run_runner(db_url, "--phase", "c", env={
            "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com",
            "ALERTS_RATE_LIMIT_EMAIL_PER_MINUTE": "3"})
        delivered = len(smtp.messages)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert delivered == 3 and counts["sent"] == 3 and counts["channels_held"] == {"email": 2}
    assert conn.execute("SELECT status, attempts, count(*) FROM user_alert_deliveries GROUP BY 1, 2 "
                        "ORDER BY 1").fetchall() == [("queued", 0, 2), ("sent", 1, 3)]


def _runner_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "SMTP_", "TELEGRAM_", "TWILIO_"))}
    return {**env, "DATABASE_URL": db_url}
