"""Where the test run's server comes from, tried as a real pytest (and bench) process: a server
that does not answer stops the run with one line; without DATABASE_URL a throwaway server is
started and is gone afterwards, whether the tests pass, fail or are interrupted."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devtools.embedded_pg import EmbeddedPostgresError, embedded_server, find_binaries, wanted_major
from tests.conftest import ROOT

CLOSED_PORT_URL = "postgresql://postgres:not-shown@127.0.0.1:1/postgres"

# A test module run by an inner pytest with this suite's conftest as a plugin: it records the
# server it got, then ends as asked.
INNER_TEST = '''
import os, signal
import psycopg

def test_inner(db_url, admin_url):
    with psycopg.connect(admin_url, autocommit=True) as conn:
        data = conn.execute("SHOW data_directory").fetchone()[0]
    with open(os.environ["INNER_RECORD"], "w") as handle:
        handle.write(admin_url + "\\n" + data + "\\n")
    ending = os.environ["INNER_ENDING"]
    if ending == "fail":
        assert False, "this inner test fails on purpose"
    if ending != "pass":
        os.kill(os.getpid(), getattr(signal, ending))
'''


def inner_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ALERTS_TEST_PG")}
    return {**env, **extra}


def run_inner_pytest(tmp_path: Path, ending: str) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER_TEST, encoding="utf-8")
    record = tmp_path / "record.txt"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                             "--rootdir", str(tmp_path), str(test_file)], cwd=ROOT,
                            env=inner_env(INNER_RECORD=str(record), INNER_ENDING=ending),
                            capture_output=True, text=True, timeout=240)
    url, data = record.read_text(encoding="utf-8").split()
    return result, url, Path(data)


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def test_an_unreachable_database_url_stops_the_run_with_one_line():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_phase_a.py"],
                            cwd=ROOT, env=inner_env(DATABASE_URL=CLOSED_PORT_URL), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("ERROR: cannot connect to DATABASE_URL postgresql://postgres:***@127.0.0.1:1/")
    assert "set DATABASE_URL" in errors[0] and "not-shown" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout and len(result.stdout.splitlines()) <= 3, result.stdout


def test_an_unreachable_database_url_stops_the_bench_with_one_line():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--scale", "tiny"], cwd=ROOT,
                            env=inner_env(DATABASE_URL=CLOSED_PORT_URL, ALERTS_LOG_LEVEL="WARNING"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("bench/run.py: error: cannot connect to DATABASE_URL postgresql://postgres:***@")
    assert "not-shown" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("ending, exit_code", [("pass", 0), ("fail", 1), ("SIGINT", 2), ("SIGTERM", 2)])
def test_without_database_url_a_throwaway_server_runs_the_tests_and_is_removed(tmp_path, ending, exit_code):
    result, url, data = run_inner_pytest(tmp_path, ending)
    assert result.returncode == exit_code, result.stdout[-3000:] + result.stderr[-3000:]
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert not answers(url), f"the throwaway server {url} still answers after a run that ended with {ending}"
    assert not data.exists(), f"{data} is left behind after a run that ended with {ending}"


def test_a_chosen_major_version_gets_that_server():
    with embedded_server(major=18) as url, psycopg.connect(url) as conn:
        assert conn.info.server_version // 10000 == 18


def test_a_major_version_nobody_has_is_one_clear_error():
    with pytest.raises(EmbeddedPostgresError, match="no PostgreSQL 99 binaries found"):
        find_binaries("auto", major=99)
    with pytest.raises(EmbeddedPostgresError, match="must be a number, 15 or more, got '14'"):
        wanted_major("14")


def test_an_unusable_test_major_version_stops_the_run_with_one_line():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_phase_a.py"],
                            cwd=ROOT, env=inner_env(ALERTS_TEST_PG="fourteen"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == ["ERROR: ALERTS_TEST_PG (make test PG=N): the PostgreSQL major version must be a number, "
                      "15 or more, got 'fourteen'"], result.stderr
