"""Watch mode under faults and beside cron, at bench sizes:

- watch_faults/kill: a watcher SIGKILLed mid-burst and started again under the same name;
- watch_faults/restart: the PostgreSQL server restarted mid-burst under a running watcher (a
  throwaway server of the bench's own, never DATABASE_URL's);
- watch_overlap: two watchers and a cron `runner.py --phase all` every 2 s while source rows arrive.

Each reports deliveries lost (target 0) and sent twice (target: at most one batch for the faults,
none beside cron), read from the outbox files against the deliveries table."""

import logging
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import psycopg

from alerts import migrate
from alerts.delivery import DEFAULT_BATCH_SIZE
from bench.cases_latency import (
    LATENCY_SIZES,
    commit_burst,
    commit_source_row,
    latency_population,
    settled,
    start_watcher,
    stop_watcher,
    wait_until,
    watcher_up,
)
from bench.database import reset_tables, scalar, settle
from bench.procs import ROOT, child_env
from bench.report import Result
from devtools.embedded_pg import embedded_cluster

log = logging.getLogger("bench")

FAST_RECOVERY = ("UPDATE alerts_config SET lease_duration = '5 seconds', retry_base = '0.2 seconds', "
                 "retry_max = '1 second', retry_jitter_pct = 0")


def lines_per_delivery(*outboxes: Path) -> Counter:
    sent: Counter = Counter()
    for outbox in outboxes:
        if outbox.exists():
            with outbox.open("rb") as lines:
                sent.update(orjson.loads(line)["delivery_id"] for line in lines)
    return sent


def tally(conn: psycopg.Connection, sent: Counter) -> dict[str, int]:
    deliveries = {int(r[0]) for r in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sent'")}
    total = int(scalar(conn, "SELECT count(*) FROM user_alert_deliveries"))  # type: ignore[call-overload]
    return {"deliveries": total, "sent_rows": len(deliveries),
            "lost": len(deliveries - set(sent)) + total - len(deliveries),  # not sent, or marked sent unwritten
            "sent_twice": sum(1 for n in sent.values() if n > 1),
            "sent_three_times_or_more": sum(1 for n in sent.values() if n > 2)}


def outbox_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def burst_events(sizes_burst: int) -> int:
    return max(2, sizes_burst // 10)


def kill_mid_burst(url: str, conn: psycopg.Connection, workdir: Path, users: int, events: int) -> dict[str, object]:
    first_outbox, second_outbox = workdir / "kill-first.jsonl", workdir / "kill-second.jsonl"
    watcher = start_watcher(url, first_outbox)
    wait_until(watcher_up(conn), 60, "the watcher's first pass")
    commit_burst(conn, events)
    wait_until(lambda: outbox_lines(first_outbox) >= users * events // 5, 300, "a fifth of the burst sent")
    in_flight = int(scalar(conn, "SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'"))  # type: ignore[call-overload]
    watcher.proc.kill()
    watcher.wait()
    started = time.monotonic()
    restarted = start_watcher(url, second_outbox)
    try:
        wait_until(watcher_up(conn, pid=restarted.proc.pid), 60, "the restarted watcher's first pass")
        wait_until(settled(conn, events), 600, "every burst delivery sent after the restart")
    finally:
        stop_watcher(restarted)
    return {"in_flight_at_kill": in_flight, "finished_after_restart_seconds": round(time.monotonic() - started, 2),
            **tally(conn, lines_per_delivery(first_outbox, second_outbox))}


def restart_server_mid_burst(workdir: Path, users: int, events: int) -> dict[str, object]:
    outbox = workdir / "restart.jsonl"
    with embedded_cluster() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate.deploy(conn)
            latency_population(conn, users)
            conn.execute(FAST_RECOVERY)
            conn.execute("VACUUM ANALYZE")
            watcher = start_watcher(server.url, outbox)
            wait_until(watcher_up(conn), 60, "the watcher's first pass")
            commit_burst(conn, events)
            wait_until(lambda: outbox_lines(outbox) >= users * events // 5, 300, "a fifth of the burst sent")
            in_flight = int(scalar(conn, "SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'"))  # type: ignore[call-overload]
        started = time.monotonic()
        server.restart()
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                wait_until(settled(conn, events), 600, "every burst delivery sent after the server restart")
                alive = watcher.proc.poll() is None
                result = tally(conn, lines_per_delivery(outbox))
        finally:
            stop_watcher(watcher)
    return {"in_flight_at_restart": in_flight, "watcher_survived": alive,
            "finished_after_restart_seconds": round(time.monotonic() - started, 2), **result}


def beside_cron(url: str, conn: psycopg.Connection, workdir: Path, seconds: int) -> dict[str, object]:
    outbox = workdir / "overlap.jsonl"
    watchers = [start_watcher(url, outbox, name=f"bench-watcher-{n}") for n in (1, 2)]
    cron_env = child_env({"DATABASE_URL": url, "ALERTS_SENDER": f"file:{outbox}", "ALERTS_LOG_LEVEL": "WARNING"})
    cron_runs, cron_failures = 0, 0
    try:
        for n in (1, 2):
            wait_until(watcher_up(conn, f"bench-watcher-{n}"), 60, "both watchers up")
        cron: subprocess.Popen | None = None
        started = time.monotonic()
        for n in range(seconds):
            time.sleep(max(0.0, started + n - time.monotonic()))
            commit_source_row(conn, n)
            if n % 2 == 0 and (cron is None or cron.poll() is not None):
                if cron is not None:
                    cron_runs, cron_failures = cron_runs + 1, cron_failures + (cron.returncode != 0)
                cron = subprocess.Popen([sys.executable, str(ROOT / "runner.py"), "--phase", "all"], cwd=ROOT,
                                        env=cron_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if cron is not None:
            cron_runs, cron_failures = cron_runs + 1, cron_failures + (cron.wait(300) != 0)
        wait_until(settled(conn, seconds), 600, "every delivery sent beside cron")
    finally:
        for watcher in watchers:
            stop_watcher(watcher)
    return {"cron_runs": cron_runs, "cron_failures": cron_failures, "watchers": 2,
            **tally(conn, lines_per_delivery(outbox))}


def fault_cases(ctx) -> list[Result]:  # ctx: bench.cases.Context
    sizes = LATENCY_SIZES[ctx.scale.name]
    events = burst_events(sizes.burst)
    conn = ctx.conn
    results: list[Result] = []
    bound = DEFAULT_BATCH_SIZE

    reset_tables(conn)
    latency_population(conn, sizes.users)
    conn.execute(FAST_RECOVERY)
    settle(conn, analyze=True)
    started = time.perf_counter()
    killed = kill_mid_burst(ctx.url, conn, ctx.workdir, sizes.users, events)
    results.append(ctx.result(
        "watch_faults", f"SIGKILL + restart mid-burst, {events} events x {sizes.users:,} users",
        int(killed["deliveries"]), time.perf_counter() - started,  # type: ignore[call-overload]
        f"none lost, <= {bound} sent twice", killed["lost"] == 0 and int(killed["sent_twice"]) <= bound  # type: ignore[call-overload]
        and killed["sent_three_times_or_more"] == 0, **killed))
    log.info("watch faults, kill: %s", killed)

    started = time.perf_counter()
    restarted = restart_server_mid_burst(ctx.workdir, sizes.users, events)
    results.append(ctx.result(
        "watch_faults", f"server restart mid-burst, {events} events x {sizes.users:,} users",
        int(restarted["deliveries"]), time.perf_counter() - started,  # type: ignore[call-overload]
        f"none lost, <= {bound} sent twice, watcher survives",
        restarted["lost"] == 0 and int(restarted["sent_twice"]) <= bound  # type: ignore[call-overload]
        and restarted["sent_three_times_or_more"] == 0 and restarted["watcher_survived"] is True, **restarted))
    log.info("watch faults, server restart: %s", restarted)

    reset_tables(conn)
    latency_population(conn, sizes.users)
    settle(conn, analyze=True)
    seconds = max(4, sizes.seconds // 2)
    started = time.perf_counter()
    overlap = beside_cron(ctx.url, conn, ctx.workdir, seconds)
    results.append(ctx.result(
        "watch_overlap", f"2 watchers + cron every 2 s, 1 row/s for {seconds} s",
        int(overlap["deliveries"]), time.perf_counter() - started,  # type: ignore[call-overload]
        "every delivery sent exactly once",
        overlap["lost"] == 0 and overlap["sent_twice"] == 0 and overlap["cron_failures"] == 0
        and overlap["deliveries"] == seconds * sizes.users, **overlap))
    log.info("watch overlap: %s", overlap)
    return results
