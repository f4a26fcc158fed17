"""Monitoring a runner login cannot forge: a watcher's heartbeat and stop, and the closing of a
run, need the secret their opening returned (only its sha256 is stored). Played as a login that
holds alerts_runner: the unbound functions are refused, a wrong secret changes nothing, and the
runner's own calls, which carry the secret, still work."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests import seed
from tests.conftest import run_runner


@pytest.fixture
def runner_url(admin_url: str, db_url: str) -> Iterator[str]:
    name = f"alerts_test_hb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE alerts_runner").format(sql.Identifier(name)))
    yield db_url.replace("://postgres@", f"://{name}@", 1)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_dead_watcher_cannot_be_made_to_look_alive(conn, runner_url):
    with psycopg.connect(runner_url, autocommit=True) as watcher:
        secret = watcher.execute("SELECT alerts_watcher_register('w1', 'host-1', 4242)").fetchone()[0]
        assert watcher.execute("SELECT alerts_watcher_heartbeat('w1', %s)", [secret]).fetchone() == (True,)
    conn.execute("UPDATE alerts_watchers SET heartbeat_at = now() - interval '1 hour'")  # it died
    with psycopg.connect(runner_url, autocommit=True) as forger:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            forger.execute("SELECT alerts_watcher_beat('w1')")
    with psycopg.connect(runner_url, autocommit=True) as forger:
        assert forger.execute("SELECT alerts_watcher_heartbeat('w1', 'guess')").fetchone() == (False,)
        assert forger.execute("SELECT alerts_watcher_stop('w1', 'guess')").fetchone() == (False,)
    age = conn.execute("SELECT status, heartbeat_at < now() - interval '59 minutes' FROM alerts_watchers").fetchone()
    assert age == ("running", True), "a forged heartbeat moved the dead watcher's"
    assert conn.execute("SELECT secret_hash <> convert_to(%s, 'UTF8') FROM alerts_watchers", [secret]).fetchone() == (
        True,), "the secret itself is not stored"


def test_another_process_run_cannot_be_closed(conn, runner_url):
    with psycopg.connect(runner_url, autocommit=True) as runner:
        run_id, secret = runner.execute("SELECT run_id, secret FROM alerts_run_open('c')").fetchone()
    with psycopg.connect(runner_url, autocommit=True) as forger:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            forger.execute("SELECT alerts_run_finished(%s, 'ok')", [run_id])
    with psycopg.connect(runner_url, autocommit=True) as forger:
        assert forger.execute("SELECT alerts_run_close(%s, 'guess', 'ok')", [run_id]).fetchone() == (False,)
    assert conn.execute("SELECT status FROM alerts_runs WHERE id = %s", [run_id]).fetchone() == ("running",)
    with psycopg.connect(runner_url, autocommit=True) as runner:
        assert runner.execute("SELECT alerts_run_close(%s, %s, 'ok')", [run_id, secret]).fetchone() == (True,)
    assert conn.execute("SELECT status FROM alerts_runs WHERE id = %s", [run_id]).fetchone() == ("ok",)


def test_the_runner_as_a_runner_login_records_its_runs(conn, runner_url, tmp_path):
    seed.population(conn, users=2, events=1)
    result = run_runner(runner_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"})
    assert result.returncode == 0, result.stderr
    statuses = conn.execute("SELECT phase, status FROM alerts_runs ORDER BY id").fetchall()
    assert statuses == [("a", "ok"), ("b", "ok"), ("d", "ok"), ("c", "ok")], statuses
