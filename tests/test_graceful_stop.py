"""A stop signal (SIGTERM from systemd or a CI cancel, SIGINT from a terminal) while a provider is
answering: the messages in flight (one, or several at once) finish and are recorded, rows never
handed to a provider are released, and the runner exits 3. A second signal, or the grace period
running out, stops at once: the messages whose fate is unknown stay 'sending' for their lease to
decide, never released as unsent."""

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from tests import seed
from tests.conftest import ROOT, run_runner
from tests.fakes.smtp_server import FakeSmtpServer

EMAILS = 5


@pytest.fixture
def queued(conn: psycopg.Connection) -> psycopg.Connection:
    seed.population(conn, users=EMAILS, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (EMAILS,)
    return conn


def _start_runner(db_url: str, smtp: FakeSmtpServer, **env: str) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    full_env.update({"DATABASE_URL": db_url, "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                     "EMAIL_FROM": "alerts@example.com", **env})
    return subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_in_flight(smtp: FakeSmtpServer, in_flight: int) -> None:
    """Until the server holds in_flight messages unanswered (it records each before its delay)."""
    assert smtp.handler.data_started.wait(30), "the runner never sent"
    deadline = time.monotonic() + 30
    while len(smtp.messages) < in_flight:
        assert time.monotonic() < deadline, f"only {len(smtp.messages)} of {in_flight} messages in flight"
        time.sleep(0.01)


def _statuses(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT status, attempts, count(*) FROM user_alert_deliveries "
                        "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize(("signum", "in_flight"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 3)])
def test_a_stop_signal_lets_the_messages_in_flight_finish_and_records_them(queued, db_url, signum, in_flight):
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 4.0
        runner = _start_runner(db_url, smtp, ALERTS_CONCURRENCY_EMAIL=str(in_flight))
        _wait_in_flight(smtp, in_flight)
        started = time.monotonic()
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=60)
        waited = time.monotonic() - started
        assert runner.returncode == 3, (out, err)
        assert 3.0 < waited < 15, "the runner did not wait for the provider's answer"
        counts = json.loads(out.splitlines()[-1])
        assert (counts["sent"], counts["released"], counts["stopped_by"]) == (in_flight, EMAILS - in_flight,
                                                                              signum.name)
        assert "Traceback" not in err
        # the messages went out once and are recorded: the next run sends only the others
        assert _statuses(queued) == [("queued", 0, EMAILS - in_flight), ("sent", 1, in_flight)]
        smtp.handler.data_delay = 0.0
        rerun = run_runner(db_url, "--phase", "c", env={"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                                                         "EMAIL_FROM": "alerts@example.com"})
        assert rerun.returncode == 0, rerun.stderr
        recipients = [m.email["To"] for m in smtp.messages]
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == EMAILS, recipients
    assert _statuses(queued) == [("sent", 1, EMAILS)]


@pytest.mark.parametrize(("how", "in_flight"), [("second_signal", 1), ("grace_period", 1), ("grace_period", 3)])
def test_a_hard_stop_leaves_the_messages_of_unknown_fate_to_their_lease(queued, db_url, how, in_flight):
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 6.0
        runner = _start_runner(db_url, smtp, ALERTS_STOP_GRACE_SECONDS="1", ALERTS_CONCURRENCY_EMAIL=str(in_flight))
        _wait_in_flight(smtp, in_flight)
        started = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        if how == "second_signal":
            time.sleep(0.3)
            runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=60)
        waited = time.monotonic() - started
    assert runner.returncode == 1, (out, err)
    assert waited < 4, f"the runner waited for the provider after a hard stop: {err}"
    errors = [line for line in err.splitlines() if line.startswith("runner.py: error:")]
    assert len(errors) == 1 and "stopped at once" in errors[0] and "Traceback" not in err, err
    # the messages in flight may or may not have gone out: their rows stay 'sending' for the lease;
    # the rows never handed to the provider are back in the queue with their attempt given back
    assert _statuses(queued) == [("queued", 0, EMAILS - in_flight), ("sending", 1, in_flight)]


def test_with_many_in_flight_no_message_is_handed_over_after_the_stop_signal(conn, db_url):
    """Three threads sending 0.3 s messages: after SIGTERM none of them begins another one (the
    server notes when each message's MAIL FROM came), the three in flight are recorded."""
    seed.population(conn, users=60, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 0.3
        runner = _start_runner(db_url, smtp, ALERTS_CONCURRENCY_EMAIL="3")
        _wait_in_flight(smtp, 10)
        signalled = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=60)
        late = [m.started_at - signalled for m in smtp.messages if m.started_at > signalled + 0.02]
        accepted = len(smtp.messages)
    assert runner.returncode == 3, (out, err)
    assert late == [], f"messages handed to the provider after the stop signal: {late}"
    counts = json.loads(out.splitlines()[-1])
    assert counts["sent"] == accepted and counts["sent"] + counts["released"] == counts["claimed"]
    assert _statuses(conn) == [("queued", 0, 60 - accepted), ("sent", 1, accepted)]
