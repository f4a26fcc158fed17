"""Phase C's outbox path against the bare claim+complete loop, paired, in one run: for each pair a
fresh queue of EVENTS x USERS deliveries is drained by two bare workers, then (each from a fresh
queue again) by two engine workers of every given source tree, and optionally by two workers of
the engine's SQL alone (devtools.claim_worker sql). Pairing keeps each ratio meaningful on a
machine whose speed drifts.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m devtools.phase_c_ab [--pairs 6] [--events 10] [--users 10000] [--sql] [TREE ...]

TREE: a checkout of the project (default: this one); another revision's tree is made with
`git archive REV | tar -x -C DIR`. The database (bench_<random>, dropped at the end) is deployed
with this tree's schema, so compare trees whose Phase C SQL is the same. Prints one line per pair
(rate of each, ratio = bare seconds / engine seconds, i.e. engine rate / bare rate) and the median
and range of each ratio.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import data
from bench.database import bench_database, connect, reset_tables, scalar, settle
from bench.procs import ROOT


def drain(tree: Path, mode: str, url: str, outbox: Path, batch: int = 500, workers: int = 2) -> tuple[float, int]:
    """Two workers of tree released together: (seconds until the last finished, rows they sent)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(tree)
    procs = [subprocess.Popen([sys.executable, "-m", "devtools.claim_worker", mode, url, str(batch), str(outbox)],
                              cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"phase_c_ab: a {mode} worker of {tree} did not start")
    released = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    outbox.unlink(missing_ok=True)
    return max(float(r["finished"]) for r in reports) - released, sum(int(r["rows"]) for r in reports)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Phase C's outbox path vs the bare loop, paired.")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--sql", action="store_true", help="also time the engine's SQL alone (this tree's)")
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT])
    args = parser.parse_args(argv)
    admin_url = os.environ.get("DATABASE_URL", "").strip()
    if not admin_url:
        print("phase_c_ab: set DATABASE_URL to a server where this role may CREATE DATABASE", file=sys.stderr)
        return 2
    runs = [(str(tree), tree.resolve(), "engine") for tree in args.trees] + ([("sql", ROOT, "sql")] if args.sql else [])
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    with bench_database(admin_url) as url, connect(url) as conn, tempfile.TemporaryDirectory() as workdir:
        def fresh_queue() -> int:
            reset_tables(conn)
            queued = data.send_queue(conn, args.events, args.users)
            settle(conn, analyze=True)
            return queued
        for pair in range(args.pairs):
            fresh_queue()
            bare_seconds, bare_rows = drain(ROOT, "bare", url, Path(workdir) / "bare.jsonl")
            line = [f"pair {pair}: bare {bare_rows / bare_seconds:,.0f}/s"]
            for name, tree, mode in runs:
                queued = fresh_queue()
                seconds, rows = drain(tree, mode, url, Path(workdir) / "engine.jsonl")
                sent = scalar(conn, "SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'")
                if not rows == sent == queued:
                    raise SystemExit(f"phase_c_ab: {name} sent {rows} ({sent} rows 'sent') of {queued}")
                ratios[name].append(bare_seconds / seconds)
                line.append(f"{name} {rows / seconds:,.0f}/s ratio {bare_seconds / seconds:.3f}")
            print(" | ".join(line), flush=True)
    for name, values in ratios.items():
        print(f"{name}: ratio median {statistics.median(values):.3f}, range {min(values):.3f}-{max(values):.3f}, "
              f"{len(values)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
