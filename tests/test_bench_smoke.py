"""The benchmark runs end to end at its tiny scale: every case reports numbers, the bench
database is dropped afterwards. No timing is asserted here: tiny sizes measure nothing."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ("phase_b_fanout", "phase_b_rerun", "phase_c_send", "claim_growth", "phase_a", "runner_memory",
         "watch_latency", "watch_faults", "watch_overlap")
NUMBERS = ("rows", "seconds", "rows_per_s", "peak_rss_mb")

pytestmark = pytest.mark.once  # slow: .ci/run runs it on one server only


def test_bench_tiny_reports_every_case(admin_url: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env["DATABASE_URL"] = admin_url
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--scale", "tiny", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["scale"] == "tiny" and report["errors"] == []
    by_case = {case: [r for r in report["results"] if r["case"] == case] for case in CASES}
    for case, rows in by_case.items():
        assert rows, f"{case} missing from the JSON"
        for row in rows:
            for key in NUMBERS:
                assert isinstance(row[key], int | float) and math.isfinite(row[key]), (case, key, row)
            assert row["rows"] > 0 and row["seconds"] > 0, row
            assert isinstance(row["met"], bool) and row["target"], row
    for case in CASES:
        assert case in done.stdout, f"{case} missing from the table"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [report["database"]]).fetchone()
    assert left == (0,), f"bench database {report['database']} was not dropped"
