"""Watch mode's latency: a loop commits source rows (high-impact events and regional risk spikes)
at a steady rate, or a burst at once, while a `runner.py --watch` process sends every delivery to a
file outbox. Reported: the time from each source row's commit to its users' outbox lines (first
and last) and to its last `sent` row, as p50, p99 and max; the burst's total against a bare fanout
plus a bare SKIP LOCKED claim loop of the same rows, run in the same bench."""

import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import psycopg

from alerts.errors import EXIT_STOPPED
from bench import data
from bench.database import reset_tables, scalar, settle, timed
from bench.procs import ROOT, Child
from bench.report import Result, ratio
from devtools.claim_worker import run_bare

log = logging.getLogger("bench")

WATCH_NAME = "bench-watcher"


@dataclass(frozen=True)
class LatencySizes:
    users: int
    seconds: int  # one source row per second for this long
    burst: int  # source rows committed at once


LATENCY_SIZES = {
    "tiny": LatencySizes(users=200, seconds=4, burst=3),
    "small": LatencySizes(users=2_000, seconds=20, burst=20),
    "medium": LatencySizes(users=10_000, seconds=30, burst=40),
    "large": LatencySizes(users=10_000, seconds=60, burst=100),
}


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.99 = p99) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 4), "p50": round(statistics.median(values), 4),
            "p99": round(percentile(values, 0.99), 4), "max": round(max(values), 4), "samples": len(values)}


# ---------------------------------------------------------------- the watcher and the data


def start_watcher(url: str, outbox: Path, name: str = WATCH_NAME, **env: str) -> Child:
    return Child([str(ROOT / "runner.py"), "--watch"],
                 {"DATABASE_URL": url, "ALERTS_SENDER": f"file:{outbox}", "ALERTS_WATCHER_NAME": name,
                  "ALERTS_LOG_LEVEL": "WARNING", **env})


def stop_watcher(child: Child) -> None:
    child.proc.terminate()
    done = child.wait()
    if done.exit_code != EXIT_STOPPED:
        raise RuntimeError(f"runner.py --watch exited {done.exit_code}: {done.stderr[-2000:]}")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"after {timeout:.0f} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def watcher_up(conn: psycopg.Connection, name: str = WATCH_NAME, pid: int | None = None) -> Callable[[], bool]:
    """The watcher (that process, given pid) has made its first pass."""
    return lambda: bool(scalar(conn, "SELECT coalesce(bool_or(passes > 0 AND (%s::integer IS NULL OR pid = %s)), false)"
                                     " FROM alerts_watchers WHERE name = %s", [pid, pid, name]))


SETTLED = """
SELECT (SELECT count(*) FROM alert_events) = %s
   AND NOT EXISTS (SELECT 1 FROM alert_events WHERE fanout_completed_at IS NULL)
   AND NOT EXISTS (SELECT 1 FROM user_alert_deliveries WHERE status = 'queued' AND delivery_kind = 'instant')
   AND NOT EXISTS (SELECT 1 FROM user_alert_deliveries WHERE status = 'sending')
"""


def settled(conn: psycopg.Connection, alert_events: int) -> Callable[[], bool]:
    """Every source row became its alert event, all are fanned out, nothing is queued or sending.
    Index look-ups only: the check must not take CPU from the watcher it waits for."""
    return lambda: scalar(conn, SETTLED, [alert_events]) is True


def latency_population(conn: psycopg.Connection, users: int) -> None:
    """data.population (HIGH_IMPACT_EVENT, email, every user eligible) plus a global
    REGIONAL_RISK_SPIKE pref per user, so a spike reaches every user too."""
    data.population(conn, users)
    conn.execute("INSERT INTO user_alert_prefs (user_id, alert_type, region, enabled)"
                 " SELECT id, 'REGIONAL_RISK_SPIKE', 'global', true FROM users")


def commit_source_row(conn: psycopg.Connection, n: int) -> tuple[str, float]:
    """Even n: a severity-5 event; odd n: a risk spike (score 95) in a region of its own. Returns
    the key of the alert event it becomes and the wall-clock time its commit returned."""
    if n % 2 == 0:
        event_id = scalar(conn, "INSERT INTO events (title, region, category, severity_score, inserted_at)"
                                " VALUES (%s, 'Europe', 'supply', 5, now()) RETURNING id", [f"Outage {n}"])
        return f"event:{event_id}", time.time()
    conn.execute("INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)"
                 " VALUES (%s, 7, 95, 'up', now())", [f"Latency region {n}"])
    return f"region:Latency region {n}", time.time()


def commit_burst(conn: psycopg.Connection, events: int) -> tuple[list[str], float]:
    """events severity-5 events in one statement, one commit."""
    rows = conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at)"
                        " SELECT 'Burst ' || g, 'Europe', 'supply', 5, now() FROM generate_series(1, %s) g"
                        " RETURNING id", [events]).fetchall()
    return [f"event:{r[0]}" for r in rows], time.time()


def alert_event_keys(conn: psycopg.Connection) -> dict[int, str]:
    """alert_events.id -> the key commit_source_row() gave its source row."""
    rows = conn.execute("SELECT id, CASE WHEN alert_type = 'HIGH_IMPACT_EVENT' THEN 'event:' || driver_event_ids[1]"
                        " ELSE 'region:' || scope_region END FROM alert_events").fetchall()
    return {int(i): key for i, key in rows}


@dataclass
class Arrival:
    first: float
    last: float
    lines: int


def outbox_arrivals(outbox: Path) -> tuple[dict[int, Arrival], dict[int, int]]:
    """Per alert event: the first and last written_at of its outbox lines; and lines per delivery id."""
    arrivals: dict[int, Arrival] = {}
    per_delivery: dict[int, int] = {}
    with outbox.open("rb") as lines:
        for line in lines:
            record = orjson.loads(line)
            at = datetime.fromisoformat(record["written_at"]).timestamp()
            event = int(record["alert_event_id"])
            seen = arrivals.get(event)
            if seen is None:
                arrivals[event] = Arrival(at, at, 1)
            else:
                seen.first, seen.last, seen.lines = min(seen.first, at), max(seen.last, at), seen.lines + 1
            delivery = int(record["delivery_id"])
            per_delivery[delivery] = per_delivery.get(delivery, 0) + 1
    return arrivals, per_delivery


def last_sent(conn: psycopg.Connection) -> dict[int, float]:
    rows = conn.execute("SELECT alert_event_id, extract(epoch FROM max(sent_at))::float8"
                        " FROM user_alert_deliveries GROUP BY 1").fetchall()
    return {int(e): float(t) for e, t in rows}


def measure(conn: psycopg.Connection, outbox: Path, commits: dict[str, float]) -> dict[str, object]:
    """Latencies per source row from its commit: first and last outbox line, last sent row."""
    keys = alert_event_keys(conn)
    arrivals, per_delivery = outbox_arrivals(outbox)
    sent = last_sent(conn)
    to_first, to_last, to_sent = [], [], []
    for event, arrival in arrivals.items():
        committed = commits[keys[event]]
        to_first.append(arrival.first - committed)
        to_last.append(arrival.last - committed)
        to_sent.append(sent[event] - committed)
    return {"commit_to_first_line": spread(to_first), "commit_to_last_line": spread(to_last),
            "commit_to_last_sent_row": spread(to_sent), "source_rows": len(commits),
            "alert_events": len(arrivals), "outbox_lines": sum(per_delivery.values()),
            "deliveries": len(per_delivery), "sent_twice": sum(1 for n in per_delivery.values() if n > 1)}


# ---------------------------------------------------------------- the cases


def single_events(url: str, conn: psycopg.Connection, workdir: Path, sizes: LatencySizes,
                  watchers: int) -> dict[str, object]:
    """One source row per second for sizes.seconds seconds, watchers watchers sending (with two, one
    fans out while the other holds Phase C's lock and sends)."""
    outbox = workdir / f"watch-single-{watchers}.jsonl"
    names = [f"{WATCH_NAME}-{n}" for n in range(watchers)]
    running = [start_watcher(url, outbox, name) for name in names]
    try:
        for name in names:
            wait_until(watcher_up(conn, name), 60, "the watchers' first passes")
        commits: dict[str, float] = {}
        started = time.monotonic()
        for n in range(sizes.seconds):
            time.sleep(max(0.0, started + n - time.monotonic()))
            key, committed = commit_source_row(conn, n)
            commits[key] = committed
        wait_until(settled(conn, sizes.seconds), 300 + sizes.seconds,
                   f"{sizes.seconds * sizes.users:,} deliveries sent")
    finally:
        for watcher in running:
            stop_watcher(watcher)
    return measure(conn, outbox, commits)


def burst(url: str, conn: psycopg.Connection, workdir: Path, sizes: LatencySizes, watchers: int) -> dict[str, object]:
    outbox = workdir / f"watch-burst-{watchers}.jsonl"
    names = [f"{WATCH_NAME}-{n}" for n in range(watchers)]
    running = [start_watcher(url, outbox, name) for name in names]
    try:
        for name in names:
            wait_until(watcher_up(conn, name), 60, "the watchers' first passes")
        keys, committed = commit_burst(conn, sizes.burst)
        total = wait_until(settled(conn, sizes.burst), 900, f"{sizes.burst * sizes.users:,} burst deliveries sent")
    finally:
        for watcher in running:
            stop_watcher(watcher)
    result = measure(conn, outbox, dict.fromkeys(keys, committed))
    result["total_seconds"] = round(float(scalar(conn, "SELECT extract(epoch FROM max(sent_at))::float8"
                                                       " FROM user_alert_deliveries")) - committed, 3)
    result["settled_after_seconds"] = round(total, 3)
    return result


def bare_burst(conn: psycopg.Connection) -> dict[str, float]:
    """The same fanout as one bare INSERT ... SELECT, then a bare claim-and-complete loop
    (batch 500, one connection), from the same alert events."""
    conn.execute("TRUNCATE user_alert_deliveries RESTART IDENTITY CASCADE")
    settle(conn, analyze=True)
    fanout, rows = timed(conn, "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
                               " SELECT e.id, u.id, 'email', 'instant' FROM alert_events e CROSS JOIN users u")
    started = time.perf_counter()
    claimed = run_bare(conn, 500)
    claim = time.perf_counter() - started
    return {"fanout_seconds": round(fanout, 3), "claim_seconds": round(claim, 3), "rows": float(rows),  # type: ignore[arg-type]
            "claimed": float(claimed), "total_seconds": round(fanout + claim, 3)}


def latency_cases(ctx) -> list[Result]:  # ctx: bench.cases.Context
    sizes = LATENCY_SIZES[ctx.scale.name]
    conn = ctx.conn
    results: list[Result] = []

    for watchers in (1, 2):
        reset_tables(conn)
        latency_population(conn, sizes.users)
        settle(conn, analyze=True)
        single = single_events(ctx.url, conn, ctx.workdir, sizes, watchers)
        last = single["commit_to_last_line"]
        assert isinstance(last, dict)
        deliveries = int(single["deliveries"])  # type: ignore[call-overload]
        results.append(ctx.result(
            "watch_latency", f"1 row/s for {sizes.seconds} s, {sizes.users:,} users, {watchers} watcher(s)",
            deliveries, float(last["p99"]), "p99 commit -> last outbox line <= 2 s",
            float(last["p99"]) <= 2.0 and deliveries == sizes.seconds * sizes.users and single["sent_twice"] == 0,
            seconds_meaning="p99 from a source row's commit to its last user's outbox line", watchers=watchers,
            **single))
        log.info("watch latency, single rows, %s watcher(s): %s", watchers, json.dumps(single))

    bare: dict[str, float] | None = None
    for watchers in (1, 2):
        reset_tables(conn)
        latency_population(conn, sizes.users)
        settle(conn, analyze=True)
        burst_result = burst(ctx.url, conn, ctx.workdir, sizes, watchers)
        bare = bare or bare_burst(conn)  # the same alert events, fanned out and claimed bare, once
        first = burst_result["commit_to_first_line"]
        assert isinstance(first, dict)
        total = float(burst_result["total_seconds"])  # type: ignore[arg-type]
        deliveries = int(burst_result["deliveries"])  # type: ignore[call-overload]
        results.append(ctx.result(
            "watch_latency", f"burst of {sizes.burst} events, {sizes.users:,} users, {watchers} watcher(s)",
            deliveries, float(first["min"]), "first outbox line <= 2 s after the commit; all sent",
            float(first["min"]) <= 2.0 and deliveries == sizes.burst * sizes.users
            and burst_result["sent_twice"] == 0,
            seconds_meaning="from the burst's commit to its first outbox line",
            baseline_seconds=bare["total_seconds"], ratio_to_baseline=ratio(total, bare["total_seconds"]),
            ratio_meaning="burst commit -> last sent row / (bare fanout + bare claim loop)", bare=bare,
            watchers=watchers, **burst_result))
        log.info("watch latency, burst, %s watcher(s): %s", watchers, json.dumps({"burst": burst_result,
                                                                                  "bare": bare}))
    return results
