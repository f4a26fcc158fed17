"""The runner and the migrator behind a real PgBouncer in transaction mode: overlapping cron runs
with small batches (many executions of the same statements on few server connections), and
--migrate. psycopg would prepare statements after 5 executions; those outlive the transaction on
the pooler's server connections and the next client fails, so the runner never prepares any."""

import json
import subprocess
import sys
from collections import Counter

from tests import seed
from tests.conftest import ROOT, run_runner
from tests.pgbouncer import pgbouncer
from tests.test_migrations import schema_of


def test_overlapping_runs_through_pgbouncer_send_every_delivery_once(conn, db_url, tmp_path):
    seed.population(conn, users=150, events=0, channels=("email", "telegram"))
    outbox = tmp_path / "outbox.jsonl"
    with pgbouncer(db_url, pool_size=3) as pooled_url:
        env = {"DATABASE_URL": pooled_url, "ALERTS_SENDER": f"file:{outbox}", "PATH": "/usr/bin:/bin",
               "ALERTS_BATCH_SIZE": "5"}
        for round_number in range(3):
            seed.event(conn, title=f"Round {round_number}", severity=5)
            runners = [subprocess.Popen([sys.executable, "runner.py", "--phase", "all"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for _ in range(8)]
            for runner in runners:
                out, err = runner.communicate(timeout=180)
                assert runner.returncode == 0, err
                assert all(json.loads(line)["phase"] for line in out.splitlines())
        final = run_runner(pooled_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"})
        assert final.returncode == 0, final.stderr
    sent = Counter(json.loads(line)["delivery_id"] for line in outbox.read_text().splitlines())
    assert len(sent) == 3 * 150 * 2 and max(sent.values()) == 1
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [
        ("sent", 900)]


def test_migrate_through_pgbouncer_deploys_the_same_schema(empty_db_url, db_url):
    """Three --migrate at once through the pooler, then one more: each waits for the transaction-scoped
    migrate lock in turn, and the schema is the one a direct deploy gives."""
    with pgbouncer(empty_db_url, pool_size=3) as pooled_url:
        env = {"DATABASE_URL": pooled_url, "PATH": "/usr/bin:/bin"}
        migrations = [subprocess.Popen([sys.executable, "runner.py", "--migrate"], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for migration in migrations:
            out, err = migration.communicate(timeout=300)
            assert migration.returncode == 0, err
        result = run_runner(pooled_url, "--migrate")
        assert result.returncode == 0, result.stderr
    assert schema_of(empty_db_url) == schema_of(db_url)
