"""`runner.py --migrate` on a live database: beside three cron-like loops of `--phase all` while
new events arrive, no migrate and no phase run fails, and nothing is sent twice; re-migrating an
up-to-date database applies nothing, and an upgrade from a landed release pauses the phases,
which skip cleanly until it is done."""

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from alerts import migrate
from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests import seed
from tests.conftest import ROOT, run_runner
from tests.test_migrations import sqitch


@dataclass
class PhaseLoops:
    """Three loops of `runner.py --phase all` (a cron that overlaps itself) and a host inserting a
    high-impact event every half second, until stop()."""

    url: str
    outbox: Path
    loops: int = 3
    runs: list[tuple[int, str, str]] = field(default_factory=list)  # (exit code, stdout, stderr)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url, "ALERTS_SENDER": f"file:{self.outbox}", "PATH": "/usr/bin:/bin",
                "ALERTS_BATCH_SIZE": "7"}

    def start(self) -> "PhaseLoops":
        self._threads = [threading.Thread(target=self._loop) for _ in range(self.loops)]
        self._threads.append(threading.Thread(target=self._new_events))
        for thread in self._threads:
            thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            run = subprocess.run([sys.executable, "runner.py", "--phase", "all"], cwd=ROOT, env=self.env(),
                                 capture_output=True, text=True, timeout=120)
            self.runs.append((run.returncode, run.stdout, run.stderr))

    def _new_events(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            number = 0
            while not self._stop.wait(0.5):
                number += 1
                seed.event(conn, title=f"Arriving {number}", severity=5)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)

    def failures(self) -> list[str]:
        return [f"exit {code}: {err.strip()[-500:]}" for code, _out, err in self.runs if code != 0]

    def skipped_for_migration(self) -> int:
        return sum('"reason": "migration_running"' in out for _code, out, _err in self.runs)


def send_the_rest_and_count(url: str, loops: PhaseLoops) -> Counter:
    """One more run after the loops, so whatever a skipped run left is sent; then what was sent."""
    final = subprocess.run([sys.executable, "runner.py", "--phase", "all"], cwd=ROOT, env=loops.env(),
                           capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    return Counter(json.loads(line)["delivery_id"] for line in loops.outbox.read_text().splitlines())


def test_re_migrating_an_up_to_date_database_beside_running_phases_applies_nothing(conn, db_url, tmp_path):
    seed.population(conn, users=30, events=2, channels=("email", "telegram"))
    loops = PhaseLoops(db_url, tmp_path / "outbox.jsonl").start()
    migrates = []
    try:
        for _ in range(40):
            run = run_runner(db_url, "--migrate")
            migrates.append((run.returncode, run.stdout, run.stderr))
    finally:
        loops.stop()
    assert [m for m in migrates if m[0] != 0] == []
    assert {json.loads(out)["applied"] == [] for _code, out, _err in migrates} == {True}
    assert loops.failures() == []
    assert len(loops.runs) >= 3, "the loops ran beside the migrates"
    sent = send_the_rest_and_count(db_url, loops)
    assert max(sent.values()) == 1
    assert conn.execute("SELECT count(*) FILTER (WHERE status <> 'sent'), count(*) FROM user_alert_deliveries"
                        ).fetchone() == (0, len(sent))


@pytest.mark.parametrize("release", ["@v1.0", "@v1.1"])
def test_an_upgrade_from_a_landed_release_while_phases_run(empty_db_url, tmp_path, release):
    """A Phase B step of another host holds its lock when the upgrade starts, so the deploy waits
    (holding alerts_v2_migrate) while the loops find the schema behind: they skip, exit 0. Then it
    pauses every phase, deploys, and the loops send everything, once."""
    sqitch(empty_db_url, "deploy", "--to", release)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        seed.population(conn, users=30, events=2, channels=("email", "telegram"))
    loops = PhaseLoops(empty_db_url, tmp_path / "outbox.jsonl")
    with psycopg.connect(empty_db_url) as phase_b_step, psycopg.connect(empty_db_url, autocommit=True) as watcher:
        phase_b_step.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(PHASE_LOCK_NAMES["b"])])
        deploy = subprocess.Popen([sys.executable, "runner.py", "--migrate"], cwd=ROOT, env=loops.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not migrate.migration_running(watcher):
            assert time.monotonic() < deadline and deploy.poll() is None, "the deploy never took its lock"
            time.sleep(0.05)
        loops.start()
        try:
            while loops.skipped_for_migration() < 3:  # every loop has met the deploy at least once
                assert time.monotonic() < deadline + 30, loops.failures() or "the loops never met the deploy"
                time.sleep(0.1)
            phase_b_step.rollback()
            out, err = deploy.communicate(timeout=120)
            assert deploy.returncode == 0, err
            done = len(loops.runs)
            while len(loops.runs) < done + 6:  # two more rounds of each loop on the upgraded schema
                time.sleep(0.1)
        finally:
            loops.stop()
    assert loops.failures() == []
    assert json.loads(out)["current"] == migrate.read_plan()[-1].name
    sent = send_the_rest_and_count(empty_db_url, loops)
    assert sent and max(sent.values()) == 1
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FILTER (WHERE status <> 'sent'), count(*) FROM user_alert_deliveries"
                            ).fetchone() == (0, len(sent))
