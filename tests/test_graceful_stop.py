"""A stop signal (SIGTERM from systemd or a CI cancel, SIGINT from a terminal) while a provider is
answering: the message in flight finishes and is recorded, rows never handed to a provider are
released, and the runner exits 3. A second signal, or the grace period running out, stops at once:
the message whose fate is unknown stays 'sending' for its lease to decide, never released as unsent."""

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

EMAILS = 3


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


def _statuses(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT status, attempts, count(*) FROM user_alert_deliveries "
                        "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_lets_the_message_in_flight_finish_and_records_it(queued, db_url, signum):
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 4.0
        runner = _start_runner(db_url, smtp)
        assert smtp.handler.data_started.wait(30), "the runner never sent"
        started = time.monotonic()
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=60)
        waited = time.monotonic() - started
        assert runner.returncode == 3, (out, err)
        assert 3.0 < waited < 15, "the runner did not wait for the provider's answer"
        counts = json.loads(out.splitlines()[-1])
        assert (counts["sent"], counts["released"], counts["stopped_by"]) == (1, EMAILS - 1, signum.name)
        assert "Traceback" not in err
        # the message went out once and is recorded: the next run sends only the others
        assert _statuses(queued) == [("queued", 0, EMAILS - 1), ("sent", 1, 1)]
        smtp.handler.data_delay = 0.0
        rerun = run_runner(db_url, "--phase", "c", env={"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                                                         "EMAIL_FROM": "alerts@example.com"})
        assert rerun.returncode == 0, rerun.stderr
        recipients = [m.email["To"] for m in smtp.messages]
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == EMAILS, recipients
    assert _statuses(queued) == [("sent", 1, EMAILS)]


@pytest.mark.parametrize("how", ["second_signal", "grace_period"])
def test_a_hard_stop_leaves_the_message_of_unknown_fate_to_its_lease(queued, db_url, how):
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 6.0
        runner = _start_runner(db_url, smtp, ALERTS_STOP_GRACE_SECONDS="1")
        assert smtp.handler.data_started.wait(30), "the runner never sent"
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
    # the message in flight may or may not have gone out: its row stays 'sending' for the lease;
    # the rows never handed to the provider are back in the queue with their attempt given back
    assert _statuses(queued) == [("queued", 0, EMAILS - 1), ("sending", 1, 1)]
