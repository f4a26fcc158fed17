"""Advisory locks: the same key in SQL and Python; a busy phase is skipped with exit 0."""

import json
import multiprocessing
import os
import subprocess
import sys
import time

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests import seed
from tests.conftest import ROOT, run_runner
from tests.fakes.smtp_server import FakeSmtpServer


def test_phase_keys_agree_with_sql(conn):
    for name in [*PHASE_LOCK_NAMES.values(), "alerts_v2_migrate", "ü-é ✓", "x" * 500]:
        assert conn.execute("SELECT alerts_lock_key(%s)", [name]).fetchone() == (lock_key(name),)


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s))
def test_any_name_gives_the_same_key_in_python_and_sql(name, template_db, admin_url):
    from tests.dbtools import with_database

    with psycopg.connect(with_database(admin_url, template_db), autocommit=True) as conn:
        assert conn.execute("SELECT alerts_lock_key(%s)", [name]).fetchone() == (lock_key(name),)


@pytest.mark.parametrize("phase", ["a", "b", "c"])
def test_runner_skips_a_phase_whose_lock_is_held(conn, db_url, tmp_path, phase):
    seed.population(conn, users=3, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(PHASE_LOCK_NAMES[phase])])
        result = run_runner(db_url, "--phase", phase, env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"phase": phase, "locked": False, "skipped": True,
                                         "reason": "lock_not_acquired"}
    assert "skipped" in result.stderr
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status <> 'queued'").fetchone() == (0,)


@pytest.mark.parametrize("function", ["alerts_phase_a", "alerts_phase_b"])
def test_sql_phase_returns_skip_object_while_another_session_runs(conn, db_url, function):
    phase = function[-1]
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(alerts_lock_key(%s))", [PHASE_LOCK_NAMES[phase]])
        assert conn.execute(f"SELECT {function}()").fetchone() == (
            {"phase": phase, "locked": False, "skipped": True, "reason": "lock_not_acquired"},)
    assert conn.execute(f"SELECT {function}()->>'locked'").fetchone() == ("true",)


def _hold_lock_and_die(url: str, key: int, ready: "multiprocessing.synchronize.Event") -> None:
    import os

    conn = psycopg.connect(url)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    ready.set()
    os._exit(9)  # dies holding the lock, without closing anything


def test_lock_of_a_dead_session_is_released(conn, db_url):
    ready = multiprocessing.get_context("spawn").Event()
    holder = multiprocessing.get_context("spawn").Process(
        target=_hold_lock_and_die, args=(db_url, lock_key(PHASE_LOCK_NAMES["a"]), ready))
    holder.start()
    holder.join(30)
    assert ready.is_set() and holder.exitcode == 9
    result = run_runner(db_url, "--phase", "a")
    assert result.returncode == 0 and json.loads(result.stdout)["locked"] is True


def test_a_sending_run_holds_no_transaction_open_between_statements(conn, db_url):
    """Phase C takes its shared lock inside each claim's transaction, not for the run: no runner
    session sits idle in transaction (behind a transaction pooler that would pin a server
    connection per sender, and eight senders would starve a pool of four), and none holds back
    vacuum."""
    seed.population(conn, users=40, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 0.05
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
        env.update({"DATABASE_URL": db_url, "ALERTS_CONCURRENCY_EMAIL": "1",
                    "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com"})
        runner = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        states: set[tuple] = set()
        while runner.poll() is None:
            states |= set(conn.execute(
                "SELECT state, backend_xmin IS NOT NULL AND state LIKE 'idle%%' FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'alerts_v2_runner'").fetchall())
            time.sleep(0.02)
        runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert len(smtp.messages) == 40
    assert not any(state and state.startswith("idle in transaction") for state, _ in states), states
    assert not any(holds_xmin for _, holds_xmin in states), states
