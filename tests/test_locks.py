"""Advisory locks: the same key in SQL and Python; a busy phase is skipped with exit 0."""

import json
import multiprocessing

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests import seed
from tests.conftest import run_runner


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


def test_phase_c_lock_holds_no_snapshot_while_the_run_goes_on(conn, db_url):
    """The lock connection sits idle in transaction for the whole run: it must not hold back
    vacuum (backend_xmin) or every claim re-reads all the rows sent so far."""
    from alerts.phases import phase_c_lock

    with phase_c_lock(db_url) as locked:
        assert locked
        held = conn.execute("SELECT state, backend_xmin FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = 'alerts_v2_runner'").fetchall()
    assert held == [("idle in transaction", None)]
