#!/usr/bin/env python3
"""Alerts v2 benchmark: each case against a bare-SQL baseline run in this process.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/run.py --scale tiny|small|medium|large [--json out.json] [--cases a,b,...]
                            [--repeat N] [--apply file.sql ...] [--strict]

Creates database bench_<random> on DATABASE_URL's server (the role must be allowed to
CREATE DATABASE), deploys the schema with alerts.migrate.deploy, runs the cases, drops the
database at the end, also on an error, Ctrl-C or SIGTERM. --repeat N runs each analysed
engine/baseline pair N times and reports the fastest of each (a noisy machine); --apply runs
SQL files after the deploy (to measure a proposed function before it is in the plan). Prints a table on stdout, progress
on stderr. Exit 0 when every case ran (1 with --strict when a target was missed), 1 when a case
failed, 2 on bad usage. Cases: phase_b_fanout, phase_b_rerun, phase_c_send, claim_growth,
phase_a, history_reads (bench/cases_history.py), runner_memory, watch_latency (bench/cases_latency.py),
watch_faults and watch_overlap (bench/cases_watch_faults.py), and through loopback providers with
latency (bench/cases_providers.py): provider_email, provider_telegram, provider_email_451,
provider_split; beside other actors
(bench/cases_stall.py): frozen_sender, statement_timeout, sender_processes.
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.db import one_line  # noqa: E402
from alerts.secrets import mask_url  # noqa: E402
from bench import cases, cases_providers  # noqa: E402
from bench.cases_history import history_cases  # noqa: E402
from bench.cases_latency import latency_cases  # noqa: E402
from bench.cases_stall import stall_cases  # noqa: E402
from bench.cases_watch_faults import fault_cases  # noqa: E402
from bench.database import bench_database, connect  # noqa: E402
from bench.procs import ROOT, kill_all  # noqa: E402
from bench.report import CASES, Result, table, write_json  # noqa: E402
from bench.scales import SCALES  # noqa: E402

log = logging.getLogger("bench")

# Case groups in run order: the case names each group reports, and how to run it.
GROUPS: list[tuple[set[str], Callable[[cases.Context, set[str]], list[Result]]]] = [
    ({"phase_b_fanout", "phase_b_rerun"}, cases.phase_b_cases),
    ({"phase_c_send"}, lambda ctx, _: cases.phase_c_cases(ctx)),
    ({"claim_growth"}, lambda ctx, _: cases.claim_growth_cases(ctx)),
    ({"phase_a"}, lambda ctx, _: cases.phase_a_cases(ctx)),
    ({"history_reads"}, lambda ctx, _: history_cases(ctx)),
    ({"runner_memory"}, lambda ctx, _: cases.runner_memory_cases(ctx)),
    ({"watch_latency"}, lambda ctx, _: latency_cases(ctx)),
    ({"watch_faults", "watch_overlap"}, lambda ctx, _: fault_cases(ctx)),
    ({"provider_email", "provider_telegram", "provider_email_451", "provider_split"}, cases_providers.provider_cases),
    ({"frozen_sender", "statement_timeout", "sender_processes"}, stall_cases),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Alerts v2 benchmark against DATABASE_URL's server.")
    parser.add_argument("--scale", choices=list(SCALES), default="small",
                        help="data sizes: large = the targets' sizes, small ~1/10, tiny ~1/1000 (smoke test)")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=1,
                        help="engine/baseline pairs per analysed variant; the fastest of each is reported")
    parser.add_argument("--apply", type=Path, action="append", default=[],
                        help="SQL file to run after the deploy, e.g. a proposed CREATE OR REPLACE FUNCTION")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = parser.parse_args(argv)
    args.selected = {name.strip() for name in args.cases.split(",") if name.strip()}
    unknown = args.selected - set(CASES)
    if unknown or not args.selected:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown)) or '(none given)'}; choose from {', '.join(CASES)}")
    if not 1 <= args.repeat <= 10:
        parser.error(f"--repeat must be between 1 and 10, got {args.repeat}")
    for path in args.apply:
        if not path.is_file():
            parser.error(f"--apply {path}: no such file")
    return args


def interrupt_on_sigterm() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks drop the database."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def check_server(url: str) -> str | None:
    """None when url answers; else one line saying what is wrong and what to set."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10):
            return None
    except psycopg.Error as error:
        return (f"bench/run.py: error: cannot connect to DATABASE_URL {mask_url(url)}: {one_line(error)}; "
                "start that server or set DATABASE_URL to one that answers (a role that may CREATE DATABASE)")


def server_info(url: str) -> dict[str, object]:
    with connect(url) as conn:
        row = conn.execute("SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                           "current_setting('work_mem'), current_setting('max_wal_size'), "
                           "current_setting('synchronous_commit')").fetchone()
    assert row is not None
    return dict(zip(("server_version", "shared_buffers", "work_mem", "max_wal_size", "synchronous_commit"),
                    row, strict=True))


def git_revision() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_groups(ctx: cases.Context, selected: set[str]) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    errors: list[str] = []
    for names, run in GROUPS:
        wanted = names & selected
        if not wanted:
            continue
        started = time.perf_counter()
        log.info("running %s at scale %s", ", ".join(sorted(wanted)), ctx.scale.name)
        try:
            results.extend(run(ctx, wanted))
        except Exception as error:  # report the others; the exit code says it failed
            log.error("%s failed: %s", ", ".join(sorted(wanted)), traceback.format_exc())
            errors.append(f"{', '.join(sorted(wanted))}: {type(error).__name__}: {error}")
        log.info("done in %.1f s", time.perf_counter() - started)
    return results, errors


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s bench: %(message)s")
    args = parse_args(argv)
    admin_url = os.environ.get("DATABASE_URL", "").strip()
    if not admin_url:
        print("bench/run.py: DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host:5432/postgres "
              "(a role that may CREATE DATABASE)", file=sys.stderr)
        return 2
    unreachable = check_server(admin_url)
    if unreachable:
        print(unreachable, file=sys.stderr)
        return 1
    interrupt_on_sigterm()
    scale = SCALES[args.scale]
    meta: dict[str, object] = {"scale": scale.name, "command": " ".join(["python bench/run.py", *argv]),
                               "repeat": args.repeat, "applied": [str(p) for p in args.apply],
                               "revision": git_revision(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with bench_database(admin_url) as url, tempfile.TemporaryDirectory(prefix="alerts_bench_") as workdir:
        try:
            meta["database"] = url.rsplit("/", 1)[-1]
            meta["server"] = server_info(url)
            with connect(url) as conn:
                for path in args.apply:
                    log.info("applying %s", path)
                    conn.execute(path.read_text(encoding="utf-8").encode())
                ctx = cases.Context(url=url, conn=conn, scale=scale, workdir=Path(workdir), repeat=args.repeat)
                results, errors = run_groups(ctx, args.selected)
        finally:
            kill_all()  # before the database is dropped
    meta["errors"] = errors
    print(table(results))
    for error in errors:
        print(f"ERROR {error}")
    if args.json:
        write_json(args.json, meta, results)
    if errors:
        return 1
    return 1 if args.strict and any(r.met is False for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("bench/run.py: interrupted; the bench database was dropped", file=sys.stderr)
        sys.exit(130)
