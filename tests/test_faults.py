"""Faults with real processes and a real server: a runner killed with SIGKILL mid-send (one message
at a time into a stalled outbox, and many in flight through an SMTP server), and the PostgreSQL
server restarted mid-run. Nothing is lost; the only duplicates are messages the provider accepted
after the runner last recorded outcomes: at most one batch one at a time, at most the last second's
and those in flight with many at once."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from alerts import migrate
from devtools.embedded_pg import embedded_cluster
from tests import seed
from tests.conftest import ROOT, run_runner
from tests.fakes.smtp_server import FakeSmtpServer, message_id_of
from tests.watchers import FAST_RECOVERY, StallingProvider, check_delivered

_DELIVERY_ID = re.compile(r"<alerts-v2-delivery-(\d+)@")
RECORD_WINDOW = 1.5  # outcomes are recorded every second; a record itself takes a moment


def _prepare(conn: psycopg.Connection, users: int, events: int) -> int:
    seed.population(conn, users=users, events=events)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute(FAST_RECOVERY)
    row = conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()
    assert row is not None
    return int(row[0])


def _lines(outbox: Path) -> int:
    return len(outbox.read_bytes().splitlines()) if outbox.exists() else 0


def _finish(db_url: str, conn: psycopg.Connection, env: dict[str, str]) -> None:
    """Run phase C until nothing is queued or sending (after leases and backoffs have passed)."""
    for _ in range(20):
        result = run_runner(db_url, "--phase", "c", env=env)
        assert result.returncode == 0, result.stderr
        left = conn.execute("SELECT count(*) FROM user_alert_deliveries "
                            "WHERE status IN ('queued', 'sending')").fetchone()
        if left == (0,):
            return
        time.sleep(0.5)
    raise AssertionError("deliveries still queued or sending after 20 runs")


def statuses_of(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall())


def _ids(lines: list[bytes]) -> set[int]:
    return {json.loads(line)["delivery_id"] for line in lines}


def _check_delivered(conn: psycopg.Connection, lines: list[bytes], total: int, in_flight: set[int]) -> int:
    return check_delivered(conn, Counter(json.loads(line)["delivery_id"] for line in lines), total, in_flight)


def test_runner_killed_mid_send_loses_nothing(conn, db_url, tmp_path):
    total = _prepare(conn, users=600, events=2)
    fifo = tmp_path / "provider.fifo"
    os.mkfifo(fifo)
    provider = StallingProvider(fifo, accept_first=120)
    provider.start()
    env = {"ALERTS_BATCH_SIZE": "500", "ALERTS_MAX_SEND_PER_RUN": "100000"}
    runner = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT,
                              env={**os.environ, **env, "ALERTS_SENDER": f"file:{fifo}", "DATABASE_URL": db_url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert provider.stalled.wait(60)
    time.sleep(0.5)  # the runner fills the pipe and blocks in the middle of its first batch
    in_flight = {r[0] for r in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sending'")}
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    accepted_before_kill = provider.drain()
    accepted_unrecorded = _ids(accepted_before_kill) & in_flight  # in flight: not recorded yet
    assert 0 < len(in_flight) <= 500 and len(accepted_unrecorded) >= 120 - (500 - len(in_flight))

    outbox = tmp_path / "outbox.jsonl"
    _finish(db_url, conn, {**env, "ALERTS_SENDER": f"file:{outbox}"})
    lines = accepted_before_kill + outbox.read_bytes().splitlines()
    duplicates = _check_delivered(conn, lines, total, in_flight)
    assert duplicates == len(accepted_unrecorded), "only messages accepted since the last recorded outcomes may repeat"
    print(f"killed with {len(in_flight)} of a 500-row batch still sending, {len(accepted_unrecorded)} of them "
          f"already accepted: {duplicates} sent twice, none lost")


SESSION_ENDED = ("admin_shutdown", "connection_lost")  # the failure kinds of exit code 6


def test_server_restart_mid_run_loses_nothing_and_says_what_happened(tmp_path):
    with embedded_cluster() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate.deploy(conn)
            total = _prepare(conn, users=600, events=2)
        fifo = tmp_path / "provider.fifo"
        os.mkfifo(fifo)
        provider = StallingProvider(fifo, accept_first=120)
        provider.start()
        env = {"ALERTS_BATCH_SIZE": "500", "ALERTS_MAX_SEND_PER_RUN": "100000"}
        runner = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT,
                                  env={**os.environ, **env, "ALERTS_SENDER": f"file:{fifo}",
                                       "DATABASE_URL": server.url},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert provider.stalled.wait(60)
        time.sleep(0.5)  # the runner fills the pipe and blocks
        server.restart()  # while the runner is blocked in the middle of its first batch
        accepted_before_restart = provider.drain()
        out, err = runner.communicate(timeout=60)
        # The runner holds no session but its work connection, which reconnects once and goes on
        # (exit 0, "reconnecting once" logged); if the server is not back by then, the run ends
        # with 6: a database session ended mid-run. Either way it says so in one line.
        assert runner.returncode in (0, 6), (out, err)
        assert "Traceback" not in err, err
        message = [line for line in err.splitlines() if line.startswith("runner.py: error:")]
        if runner.returncode == 6:
            assert len(message) == 1 and message[0].split(": ")[2] in SESSION_ENDED, message
            assert "nothing is lost" in message[0], message
        else:
            assert message == [] and "reconnecting once" in err, err

        counts = json.loads(out.splitlines()[-1])
        with psycopg.connect(server.url, autocommit=True) as conn:
            in_flight = {r[0] for r in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sending'")}
            accepted_unrecorded = _ids(accepted_before_restart) & in_flight
            # the runner reconnects to record what it sent (fenced by its claim tokens) before it stops
            assert len(accepted_unrecorded) <= counts["unrecorded_sent"] + counts["stale_sent"]
            assert len(in_flight) <= 500
            (run,) = conn.execute("SELECT status, error FROM alerts_runs").fetchall()
            if runner.returncode == 6:
                assert run[0] == "failed" and run[1].split(": ")[0] in SESSION_ENDED, run
            else:
                assert run[0] == "ok", run
            time.sleep(2.2)  # the lease
            outbox = tmp_path / "outbox.jsonl"
            _finish(server.url, conn, {**env, "ALERTS_SENDER": f"file:{outbox}"})
            duplicates = _check_delivered(conn, accepted_before_restart + outbox.read_bytes().splitlines(),
                                          total, in_flight)
            assert duplicates == len(accepted_unrecorded) <= counts["unrecorded_sent"] + counts["stale_sent"]
    print(f"restart with {len(in_flight)} of a 500-row batch still sending, {len(accepted_unrecorded)} of them "
          f"accepted: {duplicates} sent twice (the runner reported {counts['unrecorded_sent']} unrecorded), none lost")


def _delivery_ids(server: FakeSmtpServer) -> list[int]:
    return [int(m.group(1)) for m in (_DELIVERY_ID.search(message_id_of(r.raw)) for r in server.messages) if m]


def test_runner_killed_with_many_in_flight_repeats_only_its_window(conn, db_url):
    """20 emails in flight through an SMTP server answering in 50 ms, outcomes recorded every second:
    a SIGKILL repeats only the messages whose outcome was not recorded yet (those accepted in the
    last second, and those in flight, which the server may still accept), and loses nothing."""
    total = _prepare(conn, users=2500, events=1)
    with FakeSmtpServer() as server:
        server.handler.data_delay = 0.05
        env = {"SMTP_URL": f"smtp://127.0.0.1:{server.port}?starttls=never", "EMAIL_FROM": "alerts@example.com",
               "ALERTS_MAX_SEND_PER_RUN": "100000", "ALERTS_CONCURRENCY_EMAIL": "20"}
        runner = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT,
                                  env={**os.environ, **env, "DATABASE_URL": db_url},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.messages) < 1000 and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.01)
        runner.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        runner.wait(10)
        time.sleep(0.2)  # what was in flight reaches the server or not
        accepted_before = Counter(_delivery_ids(server))
        recent = sum(1 for m in server.messages if m.at >= killed_at - RECORD_WINDOW)
        unrecorded = {r[0] for r in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sending'")}
        accepted_unrecorded = set(accepted_before) & unrecorded
        assert 0 < len(unrecorded) < total, "the runner was not killed mid-send"

        _finish(db_url, conn, env)
        sent = Counter(_delivery_ids(server))
    assert statuses_of(conn) == {"sent": total} and len(sent) == total, "a delivery was lost"
    duplicates = {delivery for delivery, n in sent.items() if n > 1}
    assert max(sent.values()) <= 2 and duplicates <= unrecorded, "a recorded delivery was sent twice"
    assert duplicates == accepted_unrecorded, "only messages accepted since the last record may repeat"
    assert len(duplicates) <= recent + 20, f"{len(duplicates)} repeats: more than the last second's {recent} + 20"
    print(f"killed after {sum(accepted_before.values())} accepted: {len(duplicates)} sent twice "
          f"({recent} accepted in the last {RECORD_WINDOW}s, 20 in flight), none lost")
