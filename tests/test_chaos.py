"""Chaos: several cron-like runner loops send through a provider slower than the lease, for a minute,
while a side thread terminates random backends of the runners (claims, outcomes, reclaims),
and another freezes random runners (SIGSTOP) for up to a few leases before it resumes them.
Afterwards every delivery is sent or failed (none lost), and every message sent twice is one the
runners reported as sent with an outcome they could not record or that came too late (stale):
counted by the runners, not guessed by the test."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest

from tests import seed
from tests.conftest import ROOT
from tests.fakes.smtp_server import FakeSmtpServer

CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
RUNNER_LOOPS = 3
USERS = 600
BATCH = 60
RUNNER_BACKENDS = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND application_name = 'alerts_v2_runner'
"""


class RunnerLoop(threading.Thread):
    """Starts `runner.py --phase c` again and again, as cron would, and keeps what each run reported."""

    def __init__(self, env: dict[str, str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.env, self.stop = env, stop
        self.reports: list[dict] = []
        self.exit_codes: Counter[int] = Counter()
        self.unreported = 0
        self.current: subprocess.Popen[str] | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            self.current = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=self.env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stdout, stderr = self.current.communicate(timeout=300)
            self.exit_codes[self.current.returncode] += 1
            lines = [line for line in stdout.splitlines() if line.startswith("{")]
            if lines:
                self.reports.append(json.loads(lines[-1]))
            elif "Traceback" in stderr:
                self.unreported += 1


def _freezer(loops: list[RunnerLoop], stop: threading.Event, freezes: Counter[str]) -> None:
    """Freezes a running runner for 0.5 to 3 s (up to three 1 s leases), then resumes it."""
    chooser = random.Random(11)
    while not stop.wait(chooser.uniform(1.0, 2.0)):
        process = chooser.choice(loops).current
        if process is None or process.poll() is not None:
            continue
        try:
            os.kill(process.pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        freezes["frozen"] += 1
        try:
            stop.wait(chooser.uniform(0.5, 3.0))
        finally:
            try:
                os.kill(process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def _killer(db_url: str, stop: threading.Event, kills: Counter[str]) -> None:
    chooser = random.Random(7)
    with psycopg.connect(db_url, autocommit=True) as conn:
        while not stop.wait(chooser.uniform(0.3, 0.7)):
            pids = [row[0] for row in conn.execute(RUNNER_BACKENDS)]
            if pids:
                conn.execute("SELECT pg_terminate_backend(%s)", [chooser.choice(pids)])
                kills["runner_backend"] += 1

pytestmark = pytest.mark.once  # slow: .ci/run runs it on one server only


def test_runners_under_backend_kills_lose_nothing_and_count_every_duplicate(conn, db_url):
    seed.population(conn, users=USERS, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE alerts_config SET lease_duration = '1 second', retry_base = '0.2 seconds', "
                 "retry_max = '1 second', retry_jitter_pct = 0, max_attempts = 50")
    total = conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()[0]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    stop, kills, freezes = threading.Event(), Counter[str](), Counter[str]()
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 0.05  # 60 one at a time would take 3 s: longer than the 1 s lease
        env = {**base_env, "DATABASE_URL": db_url, "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
               "EMAIL_FROM": "alerts@example.com", "ALERTS_BATCH_SIZE": str(BATCH)}
        loops = [RunnerLoop(env, stop) for _ in range(RUNNER_LOOPS)]
        killer = threading.Thread(target=_killer, args=(db_url, stop, kills), daemon=True)
        freezer = threading.Thread(target=_freezer, args=(loops, stop, freezes), daemon=True)
        for thread in [*loops, killer, freezer]:
            thread.start()
        time.sleep(CHAOS_SECONDS)
        stop.set()
        for thread in [freezer, *loops, killer]:
            thread.join(300)
        # calm again: cron runs until nothing is queued or sending (leases and backoffs are short)
        for _ in range(100):
            left = conn.execute("SELECT count(*) FROM user_alert_deliveries "
                                "WHERE status IN ('queued', 'sending')").fetchone()[0]
            if left == 0:
                break
            result = subprocess.run([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            time.sleep(0.3)
        received = Counter(m.email["To"] for m in smtp.messages)

    reports = [report for loop in loops for report in loop.reports]
    statuses = dict(conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall())
    assert set(statuses) <= {"sent", "failed"} and sum(statuses.values()) == total, statuses
    recipients = {r[0] for r in conn.execute(
        "SELECT u.email FROM user_alert_deliveries d JOIN users u ON u.id = d.user_id WHERE d.status = 'sent'")}
    assert recipients <= set(received), "a delivery recorded sent never reached the provider"
    duplicates = sum(n - 1 for n in received.values())
    reported = sum(r.get("stale_sent", 0) + r.get("unrecorded_sent", 0) + r.get("unknown_fate", 0)
                   for r in reports)
    assert sum(loop.unreported for loop in loops) == 0, "a runner died with a traceback, reporting nothing"
    assert duplicates <= reported, (duplicates, reported)
    # How many outcomes come too late after one kill or freeze is not bounded tighter here: a run
    # whose connection is killed, or that is frozen, has sent up to a second's worth of messages
    # whose outcomes wait for the next record (at 400 messages/s, more than its last claim), and
    # with a 1 s lease another runner reclaims them at once (seen: 124 in one run on PostgreSQL 18
    # while another suite ran). What matters is that each such message is counted (above); that a
    # resumed sender hands none of its expired rows over is tests/test_frozen_sender.py's.
    most_stale = max((r.get("stale_sent", 0) for r in reports), default=0)
    assert kills["runner_backend"] > 0, kills
    assert freezes["frozen"] > 0, freezes
    exit_codes = sum((loop.exit_codes for loop in loops), Counter())
    print(f"chaos {CHAOS_SECONDS:.0f} s: {len(reports)} runs (exit codes {dict(exit_codes)}), "
          f"kills {dict(kills)}, {freezes['frozen']} freezes, {total} deliveries {statuses}, {duplicates} sent twice, "
          f"{reported} reported by the runners as possibly sent twice, at most {most_stale} stale in one run")
