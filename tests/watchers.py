"""Watchers (`runner.py --watch`) as real processes, polling helpers, and what the fault tests of
both modes share: a FIFO provider that stalls on demand, short leases and backoffs
(FAST_RECOVERY), and the check that nothing was lost and only what was in flight went out twice."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.conftest import ROOT

FAST_RECOVERY = ("UPDATE alerts_config SET lease_duration = '2 seconds', retry_base = '0.2 seconds', "
                 "retry_max = '1 second', retry_jitter_pct = 0")


class Watcher:
    """`python runner.py --watch` against url; stdout and stderr kept in files under workdir."""

    def __init__(self, url: str, workdir: Path, name: str, sender: str, **env: str) -> None:
        self.name = name
        self.stdout_path, self.stderr_path = workdir / f"{name}.out", workdir / f"{name}.err"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
        full_env.update({"DATABASE_URL": url, "ALERTS_SENDER": sender, "ALERTS_WATCHER_NAME": name,
                         "ALERTS_WATCH_POLL_SECONDS": "60", **env})
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "runner.py", "--watch"], cwd=ROOT, env=full_env,
                                        stdout=out, stderr=err)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll until predicate() holds; return the seconds it took, or fail naming what never happened."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"after {timeout} s: {what}")


def scalar(conn: psycopg.Connection, query: str, params: list | None = None) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def watcher_ready(conn: psycopg.Connection, name: str) -> Callable[[], bool]:
    """True once the watcher has made its first pass (and so listens)."""
    return lambda: bool(scalar(conn, "SELECT coalesce(max(passes), 0) FROM alerts_watchers WHERE name = %s",
                               [name]))


def outbox_counts(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["delivery_id"] for line in path.read_bytes().splitlines())


def all_sent(conn: psycopg.Connection, total: int) -> Callable[[], bool]:
    return lambda: conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [
        ("sent", total)]


class StallingProvider(threading.Thread):
    """The far end of a FIFO used as the outbox: it accepts `accept_first` lines, stops reading (the
    runner or watcher blocks mid-batch once the pipe is full) until resume(), then reads on until
    the writer closes the FIFO."""

    def __init__(self, fifo: Path, accept_first: int) -> None:
        super().__init__(daemon=True)
        self.fifo, self.accept_first = fifo, accept_first
        self.lines: list[bytes] = []
        self.stalled = threading.Event()
        self._resume = threading.Event()

    def run(self) -> None:
        with open(self.fifo, "rb", buffering=0) as pipe:
            pending = b""
            stalled = False
            while True:
                if not stalled and len(self.lines) >= self.accept_first:
                    stalled = True
                    self.stalled.set()
                    self._resume.wait()
                chunk = pipe.read(4096)
                if not chunk:
                    break
                *complete, pending = (pending + chunk).split(b"\n")
                self.lines.extend(complete)

    def resume(self) -> None:
        self._resume.set()

    def drain(self) -> list[bytes]:
        """Read on until the writer closes the FIFO (or dies); every line read."""
        self.resume()
        self.join(30)
        return self.lines

    def ids(self) -> Counter:
        return Counter(json.loads(line)["delivery_id"] for line in list(self.lines))


def check_delivered(conn: psycopg.Connection, sent: Counter, total: int, in_flight: set[int],
                    accepted: Counter | None = None) -> int:
    """Every delivery recorded sent and at the provider, none more than twice, only in-flight ones
    (one batch at most) twice, and, when accepted is known, exactly the in-flight ones the provider
    had accepted; returns how many went out twice."""
    assert all_sent(conn, total)(), conn.execute("SELECT status, count(*) FROM user_alert_deliveries "
                                                 "GROUP BY 1").fetchall()
    assert len(sent) == total, "a delivery was lost"
    duplicates = {d for d, n in sent.items() if n > 1}
    assert max(sent.values()) <= 2
    assert duplicates <= in_flight, "a delivery that was not in flight was sent twice"
    if accepted is not None:
        assert duplicates == set(accepted) & in_flight, "only accepted but unrecorded messages may repeat"
    return len(duplicates)
