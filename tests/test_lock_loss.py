"""A Phase C runner whose lock session is terminated (a DBA following the guide, a failover) stops
claiming and sending within about a second, records what it sent (fenced by its claim tokens) and
releases the rest, while the next cron run takes the lock. Leases shorter than a batch make the
old behaviour visible: a runner that kept sending would send rows the next run reclaimed."""

import json
import os
import subprocess
import sys
import time
from collections import Counter

import psycopg

from tests import seed
from tests.conftest import ROOT, run_runner
from tests.dbtools import PHASE_C_LOCK_HOLDER
from tests.fakes.smtp_server import FakeSmtpServer


def _env(smtp: FakeSmtpServer, **extra: str) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com", **extra}


def _lock_holder(conn: psycopg.Connection, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(PHASE_C_LOCK_HOLDER).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("no runner took the Phase C lock")


def test_a_runner_that_lost_its_lock_stops_and_the_next_run_sends_nothing_twice(conn, db_url):
    users = 60
    seed.population(conn, users=users, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE alerts_config SET lease_duration = '3 seconds', retry_base = '0.2 seconds', "
                 "retry_max = '1 second', retry_jitter_pct = 0")
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 0.4  # 20 messages a batch, 2 at a time: 4 s, longer than the lease
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
        env.update({"DATABASE_URL": db_url, "ALERTS_BATCH_SIZE": "20", "ALERTS_CONCURRENCY_EMAIL": "2", **_env(smtp)})
        first = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert smtp.handler.data_started.wait(30)
        conn.execute("SELECT pg_terminate_backend(%s)", [_lock_holder(conn)])
        terminated_at = time.monotonic()
        # cron goes on meanwhile: every run takes the lock the first one lost
        while first.poll() is None or conn.execute(
                "SELECT count(*) FROM user_alert_deliveries WHERE status <> 'sent'").fetchone() != (0,):
            result = run_runner(db_url, "--phase", "c", env=_env(smtp, ALERTS_BATCH_SIZE="20"))
            assert result.returncode in (0, 1), result.stderr
            assert time.monotonic() - terminated_at < 120, "deliveries never all sent"
            time.sleep(0.2)
        out, err = first.communicate(timeout=30)
        sent_to = Counter(m.email["To"] for m in smtp.messages)
    assert first.returncode == 6, (out, err)  # 6: a database session (here the lock's) ended mid-run; was 1
    errors = [line for line in err.splitlines() if line.startswith("runner.py: error:")]
    assert len(errors) == 1 and errors[0].startswith("runner.py: error: lock_lost: lost the Phase C lock"), err
    counts = json.loads(out.splitlines()[-1])
    assert counts["sent"] + counts["released"] + counts["stale_outcomes"] >= 1
    assert counts["sent"] < 20, "the runner went on sending its whole batch after it lost its lock"
    duplicates = sum(n - 1 for n in sent_to.values())
    assert len(sent_to) == users, "a delivery was lost"
    assert duplicates <= counts["stale_sent"] + counts["unrecorded_sent"], (duplicates, counts)
    assert duplicates == 0, f"{duplicates} messages were sent twice"
