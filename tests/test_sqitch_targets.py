"""`make sqitch-deploy|verify|revert` run against SQITCH_TARGET, else DATABASE_URL, and refuse
to run with neither (plain `sqitch deploy` would pick libpq's default database)."""

import os
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import ROOT

TARGETS = ("sqitch-deploy", "sqitch-verify", "sqitch-revert")


def make(target: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQITCH_TARGET") and not
            k.startswith("PG")}
    # Were the guard gone, libpq's defaults would lead nowhere: no socket, no such host.
    base.update({"PGHOST": "/nonexistent", "PYTHON": sys.executable})
    return subprocess.run(["make", "-s", "-C", str(ROOT), target, f"PYTHON={sys.executable}"],
                          env={**base, **env}, capture_output=True, text=True, timeout=300)


def print_target(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQITCH_TARGET")}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "sqitch_target.py"), "--print", "deploy",
                           "--verify"], env={**clean, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", TARGETS)
def test_sqitch_targets_refuse_to_run_without_a_target(target):
    result = make(target)
    assert result.returncode != 0
    assert result.stderr.startswith("sqitch_target.py: error: no database to run sqitch against")
    assert "SQITCH_TARGET=" in result.stderr and "DATABASE_URL=" in result.stderr
    assert "sqitch" not in result.stdout.lower()


def test_database_url_without_a_database_name_is_refused():
    result = print_target(DATABASE_URL="postgresql://alerts@db.example:5432")
    assert result.returncode == 2 and "names no database" in result.stderr and result.stdout == ""


def test_database_url_becomes_a_db_pg_target_without_its_password():
    result = print_target(DATABASE_URL="postgresql://alerts:s3cr%40t@db.example:6432/app?sslmode=require")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sqitch deploy --verify db:pg://alerts@db.example:6432/app?sslmode=require"
    assert "s3cr" not in result.stdout + result.stderr


def test_sqitch_target_wins_over_database_url():
    result = print_target(SQITCH_TARGET="db:pg://other@h/x", DATABASE_URL="postgresql://alerts@db.example/app")
    assert result.stdout.strip() == "sqitch deploy --verify db:pg://other@h/x"


def test_make_sqitch_deploys_verifies_and_reverts_the_database_of_database_url(empty_db_url):
    for target in TARGETS:
        result = make(target, DATABASE_URL=empty_db_url)
        assert result.returncode == 0, f"{target}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        with psycopg.connect(empty_db_url, autocommit=True) as conn:
            changes = conn.execute("SELECT count(*) FROM sqitch.changes").fetchone()
            config = conn.execute("SELECT to_regclass('alerts_config') IS NOT NULL").fetchone()
        if target == "sqitch-revert":
            assert changes == (0,) and config == (False,)
        else:
            assert changes is not None and changes[0] > 0 and config == (True,)
