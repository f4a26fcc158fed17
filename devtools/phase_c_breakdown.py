"""Where one message's time goes in Phase C's outbox path: database, rendering, the sender, the rest.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m devtools.phase_c_breakdown [--deliveries 30000] [--batch 500] [--rounds 3]

Creates its own database bench_<random> on DATABASE_URL's server (dropped at the end), queues
deliveries x 1 email each (10,000 users per event), and runs alerts.delivery.deliver() into a
file outbox in this process, one worker, rounds times from a fresh queue. Each database call,
each render and each sender call is timed on the wall clock (time.perf_counter); "bookkeeping"
is the rest of deliver()'s time (the loop, checks, outcome lists; row conversion by psycopg is
in "database"). CPU time, which a busy machine moves less than wall time: "runner_cpu" is this
process's (time.process_time), "server_cpu" the work connection's PostgreSQL backend's (read
from /proc, so only when the server runs on this machine; null otherwise). Prints one JSON
object: microseconds per message per part, median of the rounds, and each round's figures. A
timer costs about 0.1 us a call; the wall parts add up to the total.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from alerts import delivery
from alerts.delivery import DELIVERIES, Database, deliver
from alerts.senders.file_outbox import FileOutboxSender
from bench import data
from bench.database import bench_database, connect, reset_tables, settle

USERS_PER_EVENT = 10_000


class Clock:
    """Wall seconds spent inside wrapped calls, per part."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"database": 0.0, "rendering": 0.0, "sender": 0.0}

    def wrap(self, part: str, call: Callable) -> Callable:
        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - started
        return timed


def backend_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a local process (a PostgreSQL backend), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TimedSender(FileOutboxSender):
    clock: Clock

    def send(self, message):  # type: ignore[no-untyped-def]
        return self.clock.wrap("sender", super().send)(message)

    def flush(self) -> None:
        self.clock.wrap("sender", super().flush)()


def one_round(url: str, conn: object, deliveries: int, batch: int, outbox: Path) -> dict[str, float]:
    reset_tables(conn)  # type: ignore[arg-type]
    queued = data.send_queue(conn, max(1, deliveries // USERS_PER_EVENT), min(deliveries, USERS_PER_EVENT))  # type: ignore[arg-type]
    settle(conn, analyze=True)  # type: ignore[arg-type]
    clock = Clock()
    db = Database(url)
    db._execute = clock.wrap("database", db._execute)  # type: ignore[method-assign]
    sender = TimedSender(outbox)
    sender.clock = clock
    queues = delivery.QUEUES
    delivery.QUEUES = (replace(DELIVERIES, render=clock.wrap("rendering", DELIVERIES.render)), queues[1])
    backend = int(db.value("SELECT pg_backend_pid()"))  # type: ignore[call-overload]
    try:
        server_before = backend_cpu_seconds(backend)
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = deliver(db, sender, batch, 10**12)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        server_after = backend_cpu_seconds(backend)
    finally:
        delivery.QUEUES = queues
        sender.close()
        db.close()
        outbox.unlink(missing_ok=True)
    if counts.sent != queued:
        raise SystemExit(f"phase_c_breakdown: sent {counts.sent} of {queued} queued deliveries")
    per = {part: seconds / queued * 1e6 for part, seconds in clock.seconds.items()}
    per["bookkeeping"] = total / queued * 1e6 - sum(per.values())
    per["total"] = total / queued * 1e6
    per["messages_per_second"] = queued / total
    per["runner_cpu"] = cpu / queued * 1e6
    per["server_cpu"] = (server_after - server_before) / queued * 1e6 \
        if server_before is not None and server_after is not None else None  # type: ignore[assignment]
    return per


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(description="Phase C's per-message cost, part by part (outbox sender).")
    parser.add_argument("--deliveries", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    admin_url = os.environ.get("DATABASE_URL", "").strip()
    if not admin_url:
        print("phase_c_breakdown: set DATABASE_URL to a server where this role may CREATE DATABASE", file=sys.stderr)
        return 2
    rounds: list[dict[str, float]] = []
    with bench_database(admin_url) as url, connect(url) as conn, tempfile.TemporaryDirectory() as workdir:
        for number in range(args.rounds):
            rounds.append(one_round(url, conn, args.deliveries, args.batch, Path(workdir) / f"outbox-{number}.jsonl"))
    parts = ("database", "rendering", "sender", "bookkeeping", "total", "messages_per_second", "runner_cpu",
             "server_cpu")
    median = {part: rounded(statistics.median(r[part] for r in rounds) if rounds[0][part] is not None else None)
              for part in parts}
    print(json.dumps({"unit": "microseconds per message (messages_per_second: messages/s)",
                      "deliveries": args.deliveries, "batch": args.batch, "median": median,
                      "rounds": [{part: rounded(r[part]) for part in parts} for r in rounds]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
