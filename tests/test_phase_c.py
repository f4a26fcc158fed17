"""Phase C: concurrent claimers each get different rows; every delivery reaches the outbox once."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests import seed
from tests.conftest import ROOT, run_runner


def _fan_out(conn: psycopg.Connection, users: int, events: int) -> int:
    seed.population(conn, users=users, events=events)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    row = conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()
    assert row is not None
    return int(row[0])


def _outbox_ids(path: Path) -> Counter:
    return Counter(json.loads(line)["delivery_id"] for line in path.read_text().splitlines())


@pytest.mark.parametrize("round_number", range(3))
def test_concurrent_worker_processes_send_each_delivery_exactly_once(conn, db_url, tmp_path, round_number):
    total = _fan_out(conn, users=200, events=6)
    outbox = tmp_path / "outbox.jsonl"
    workers = [
        subprocess.Popen([sys.executable, "-m", "devtools.claim_worker", "engine", db_url, "7", str(outbox)],
                         cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for worker in workers:  # all connected: release them together
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sum(r["claimed"] for r in results) == total
    assert sum(1 for r in results if r["claimed"] > 0) >= 2, "the workers did not overlap"
    sent = _outbox_ids(outbox)
    assert len(sent) == total and max(sent.values()) == 1
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY status").fetchall() == [
        ("sent", total)]


def test_a_claim_skips_rows_another_claimer_holds(conn, db_url):
    """While one transaction holds its claim open, a second claimer neither waits nor takes those rows."""
    _fan_out(conn, users=10, events=2)
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        first_ids = {r[0] for r in first.execute("SELECT delivery_id FROM claim_deliveries(8)").fetchall()}
        second.execute("SET statement_timeout = '3s'")
        second_ids = {r[0] for r in second.execute("SELECT delivery_id FROM claim_deliveries(8)").fetchall()}
        first.rollback()
        second.rollback()
    assert len(first_ids) == 8 and len(second_ids) == 8
    assert not first_ids & second_ids


def test_claim_marks_sending_and_counts_the_attempt(conn):
    _fan_out(conn, users=3, events=1)
    rows = conn.execute("SELECT delivery_id, attempts, destination FROM claim_deliveries(10)").fetchall()
    assert len(rows) == 3 and all(r[1] == 1 and r[2].endswith("@example.com") for r in rows)
    assert conn.execute("SELECT status, attempts, count(*) FROM user_alert_deliveries GROUP BY 1, 2").fetchall() == [
        ("sending", 1, 3)]


def test_runner_sends_everything_then_nothing(conn, db_url, tmp_path):
    total = _fan_out(conn, users=30, events=2)
    outbox = tmp_path / "outbox.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}"}
    first = run_runner(db_url, "--phase", "c", "--batch-size", "7", env=env)
    second = run_runner(db_url, "--phase", "c", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    counts = json.loads(first.stdout)
    assert counts["sent"] == total and counts["batches"] == 9 and counts["stopped_early"] is False
    assert json.loads(second.stdout)["claimed"] == 0
    line = json.loads(outbox.read_text().splitlines()[0])
    assert {"delivery_id", "channel", "destination", "subject", "body"} <= line.keys()
    assert len(_outbox_ids(outbox)) == total


def test_send_cap_leaves_nothing_in_sending(conn, db_url, tmp_path):
    total = _fan_out(conn, users=25, events=1)
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "c", "--batch-size", "10",
                        env={"ALERTS_SENDER": f"file:{outbox}", "ALERTS_MAX_SEND_PER_RUN": "15"})
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["sent"] == 15 and counts["stopped_early"] is True
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1 ORDER BY 1").fetchall() == [
        ("queued", total - 15), ("sent", 15)]


def test_outcomes_only_change_rows_still_sending(conn):
    _fan_out(conn, users=2, events=1)
    ids, tokens = map(list, zip(*conn.execute("SELECT delivery_id, claim_token FROM claim_deliveries(1)"), strict=True))
    assert conn.execute("SELECT mark_deliveries_sent(%s, %s, %s)", [ids, tokens, ["m1"]]).fetchone() == (1,)
    assert conn.execute("SELECT mark_deliveries_failed(%s, %s, %s)", [ids, tokens, ["late"]]).fetchone() == (0,)
    assert conn.execute("SELECT requeue_deliveries(%s, %s, %s)", [ids, tokens, ["late"]]).fetchone() == (0,)
    assert conn.execute("SELECT status, provider_message_id FROM user_alert_deliveries WHERE id = %s",
                        ids).fetchone() == ("sent", "m1")
