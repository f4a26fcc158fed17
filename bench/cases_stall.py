"""Nothing one process, setting or host does stops everyone's alerts: each case runs real runner
processes beside another actor and reports what the queue did.

    frozen_sender       a `--phase c` sender frozen (SIGSTOP) after its fifth email, lease 20 s,
                        SMTP at 50 ms; cron-like runs every 3 s: the queue is empty within
                        lease + 60 s; resumed, the sender sends twice at most what it had in flight
    statement_timeout   E events x U users under a database statement_timeout of 250 ms: repeated
                        `--phase all` into the file outbox sends every delivery exactly once, and
                        `--prune` removes them all once aged, under the same timeout; the baseline
                        is one bare INSERT ... SELECT of the same deliveries, without a timeout
    sender_processes    N emails, SMTP at 50 ms, 20 in flight per process: 4 `--phase c` processes
                        at once against one alone, >= 3.5x its rate
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import psycopg

from bench import data
from bench.cases import Context
from bench.cases_providers import EMAIL_LATENCY, queue, smtp_env, status_counts
from bench.database import reset_tables, settle, timed
from bench.procs import ROOT, Child, child_env
from bench.report import Result, ratio
from tests.fakes import free_port
from tests.fakes.smtp_server import FakeSmtpServer

log = logging.getLogger("bench")

FROZEN_LEASE_SECONDS = 20
CRON_PERIOD_SECONDS = 3.0
TIMEOUT = "250ms"
PROCESSES = 4
IN_FLIGHT = 20
# (emails for frozen_sender, events x users for statement_timeout, emails for sender_processes)
SIZES = {"tiny": (200, (2, 300), 400), "small": (2_000, (20, 2_000), 4_000),
         "medium": (6_000, (40, 5_000), 8_000), "large": (10_000, (60, 5_000), 14_040)}


def _runner(ctx: Context, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "runner.py", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env({"DATABASE_URL": ctx.url, "ALERTS_LOG_LEVEL": "WARNING", **env}))


def _unfinished(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM user_alert_deliveries "
                            "WHERE status NOT IN ('sent', 'failed')").fetchone()[0])


def frozen_sender_case(ctx: Context, count: int) -> Result:
    queue(ctx.conn, {"email": count})
    ctx.conn.execute(f"UPDATE alerts_config SET lease_duration = '{FROZEN_LEASE_SECONDS} seconds'")
    limit = FROZEN_LEASE_SECONDS + 60
    with FakeSmtpServer() as server:
        server.handler.data_delay = EMAIL_LATENCY
        env = smtp_env(server)
        frozen = _runner(ctx, "--phase", "c", env=env)
        while len(server.messages) < 5:
            time.sleep(0.005)
        os.kill(frozen.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        cron: list[subprocess.Popen[str]] = []
        try:
            while _unfinished(ctx.conn) and time.monotonic() - frozen_at < 2 * limit:
                cron.append(_runner(ctx, "--phase", "c", env=env))
                time.sleep(CRON_PERIOD_SECONDS)
            emptied = time.monotonic() - frozen_at
            cron_outputs = [run.communicate(timeout=300)[0] for run in cron]
            before_resume = len(server.messages)
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        out, _ = frozen.communicate(timeout=300)
        after_resume = len(server.messages) - before_resume
        received = Counter(m.email["To"] for m in server.messages)
    ctx.conn.execute("UPDATE alerts_config SET lease_duration = DEFAULT")
    counts = json.loads(out.strip().splitlines()[-1])
    duplicates = sum(n - 1 for n in received.values())
    skipped = sum(1 for output in cron_outputs if '"skipped": true' in output)
    met = emptied <= limit and len(received) == count and duplicates <= counts.get("stale_sent", 0)
    return ctx.result("frozen_sender", f"lease {FROZEN_LEASE_SECONDS}s, cron every {CRON_PERIOD_SECONDS:g}s",
                      count, emptied, f"queue empty within lease + 60 s = {limit} s; twice <= in flight", met,
                      baseline_seconds=float(limit), ratio_to_baseline=ratio(emptied, limit),
                      cron_runs=len(cron), cron_runs_skipped=skipped, sent_twice=duplicates,
                      sent_after_resume=after_resume, frozen_counts=counts)


def statement_timeout_case(ctx: Context, events: int, users: int) -> list[Result]:
    conn = ctx.conn
    reset_tables(conn)
    data.population(conn, users)
    event_ids = data.alert_events(conn, events, fanned_out=False)
    settle(conn, analyze=True)
    baseline, _ = timed(conn, "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
                              " SELECT e, u.id, 'email', 'instant' FROM unnest(%s::bigint[]) e CROSS JOIN users u",
                        [event_ids])
    conn.execute("TRUNCATE user_alert_deliveries RESTART IDENTITY CASCADE")
    settle(conn, analyze=True)
    expected = events * users
    database = conn.execute("SELECT current_database()").fetchone()[0]
    outbox = ctx.workdir / f"outbox-timeout-{time.time_ns()}.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}", "ALERTS_MAX_SEND_PER_RUN": str(expected)}
    conn.execute(f'ALTER DATABASE "{database}" SET statement_timeout = \'{TIMEOUT}\'')
    try:
        started, runs, failed = time.perf_counter(), 0, 0
        while runs < 50:
            done = Child(["runner.py", "--phase", "all"], env={"DATABASE_URL": ctx.url, **env}).wait()
            runs += 1
            failed += done.exit_code != 0
            if _unfinished(conn) == 0 and conn.execute(
                    "SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone()[0] == 0:
                break
        seconds = time.perf_counter() - started
        lines = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
        ids = [line["delivery_id"] for line in lines]
        statuses = status_counts(conn)
        with psycopg.connect(ctx.url, autocommit=True) as untimed:  # age them, outside the timeout
            untimed.execute("SET statement_timeout = 0")
            untimed.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '100 days'")
        prune_started = time.perf_counter()
        pruned = Child(["runner.py", "--prune"], env={"DATABASE_URL": ctx.url, "ALERTS_RETENTION_DAYS": "90"}).wait()
        prune_seconds = time.perf_counter() - prune_started
        left = int(conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()[0])
    finally:
        conn.execute(f'ALTER DATABASE "{database}" RESET statement_timeout')
    once = len(ids) == len(set(ids)) == expected
    return [
        ctx.result("statement_timeout", f"{events} events x {users} users, fanout and send, {TIMEOUT}", len(ids),
                   seconds, "every delivery sent exactly once; no run fails", once and failed == 0,
                   baseline_seconds=baseline, ratio_to_baseline=ratio(seconds, baseline), runs=runs,
                   failed_runs=failed, statuses=statuses),
        ctx.result("statement_timeout", f"--prune of {expected} aged rows, {TIMEOUT}", expected - left,
                   prune_seconds, "every aged row removed; exit 0", left == 0 and pruned.exit_code == 0,
                   prune_exit=pruned.exit_code, prune_stdout=pruned.stdout[-500:], prune_stderr=pruned.stderr[-500:]),
    ]


SINKS = 4  # SMTP server processes on one port: one Python process serves about 1,000 messages/s


def _drain_rate(ctx: Context, processes: int, count: int) -> tuple[float, int, dict[str, int]]:
    """N senders at once against SINKS SMTP server processes sharing one port (SO_REUSEPORT), so the
    provider side is not what limits the rate; the rate from the senders' start to the last message."""
    queue(ctx.conn, {"email": count})
    port = free_port()
    logs = [ctx.workdir / f"sink-{port}-{n}.log" for n in range(SINKS)]
    sinks = [subprocess.Popen([sys.executable, "-m", "devtools.smtp_sink", "--port", str(port), "--delay",
                               str(EMAIL_LATENCY), "--log", str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for log in logs]
    try:
        for sink in sinks:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        env = {"SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=never", "EMAIL_FROM": "alerts@alerts.example.com",
               "ALERTS_CONCURRENCY_EMAIL": str(IN_FLIGHT), "ALERTS_MAX_SEND_PER_RUN": str(count)}
        started = time.monotonic()
        runs = [_runner(ctx, "--phase", "c", env=env) for _ in range(processes)]
        for run in runs:
            run.communicate(timeout=600)
    finally:
        for sink in sinks:
            sink.send_signal(signal.SIGTERM)
            sink.wait(30)
    times = [float(line.split()[0]) for log in logs for line in log.read_text().splitlines()]
    rate = len(times) / (max(times) - started) if times else 0.0
    return rate, len(times), status_counts(ctx.conn)


def sender_processes_case(ctx: Context, count: int) -> Result:
    one, _, _ = _drain_rate(ctx, 1, count)
    many, received, statuses = _drain_rate(ctx, PROCESSES, count)
    r = many / one if one else 0.0
    return ctx.result("sender_processes", f"{PROCESSES} processes x {IN_FLIGHT} in flight, SMTP "
                      f"{EMAIL_LATENCY * 1000:.0f}ms", received, received / many if many else 0.0,
                      ">= 3.5x one process", r >= 3.5 and statuses == {"email:sent": count},
                      baseline_seconds=count / one if one else None, ratio_to_baseline=r,
                      one_process_per_s=one, processes_per_s=many, statuses=statuses)


def stall_cases(ctx: Context, wanted: set[str]) -> list[Result]:
    emails, (events, users), many = SIZES[ctx.scale.name]
    results: list[Result] = []
    if "frozen_sender" in wanted:
        results.append(frozen_sender_case(ctx, emails))
    if "statement_timeout" in wanted:
        results.extend(statement_timeout_case(ctx, events, users))
    if "sender_processes" in wanted:
        results.append(sender_processes_case(ctx, many))
    return results
