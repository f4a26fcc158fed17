"""A malformed DATABASE_URL is bad configuration: exit 2 and one masked line saying what to fix,
before anything tries to connect."""

import subprocess

import pytest

import runner
from tests.conftest import run_runner


@pytest.mark.parametrize("url, needle", [
    ("not-a-url", "DATABASE_URL=not-a-url is not a PostgreSQL connection string"),
    ("mysql://root:hunter2secret@127.0.0.1/app", "DATABASE_URL=mysql://root:***@127.0.0.1/app is not a PostgreSQL"),
    ("postgresql://alerts:hunter2secret@127.0.0.1:54x2/app", "the port is not a number between 1 and 65535"),
    ("postgresql://alerts:hunter2secret@127.0.0.1:99999/app", "the port is not a number between 1 and 65535"),
    ("postgresql://alerts:pa/ss2secret@127.0.0.1/app", "the port is not a number"),
    ("postgresql://alerts:p@ss2secret@127.0.0.1/app", "an '@' follows the user information"),
    ("postgresql://alerts:bad%zzsecret@127.0.0.1/app", "not a valid PostgreSQL connection string"),
    ("host=127.0.0.1 password", "not a valid PostgreSQL connection string"),
])
def test_a_malformed_database_url_exits_2_with_one_masked_line(url, needle, monkeypatch, capsys):
    """In-process: runner.main() as the console script calls it, with DATABASE_URL set."""
    monkeypatch.setenv("DATABASE_URL", url)
    code = runner.main(["--phase", "a"])
    captured = capsys.readouterr()
    _assert_refused(subprocess.CompletedProcess([], code, captured.out, captured.err), needle)


def test_a_malformed_database_url_is_refused_by_the_runner_process():
    url, needle = "mysql://root:hunter2secret@127.0.0.1/app", "is not a PostgreSQL connection string"
    _assert_refused(run_runner(url, "--phase", "a"), needle)


def _assert_refused(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]
    assert "secret" not in result.stderr + result.stdout


def test_a_key_value_database_url_is_accepted(db_url):
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    result = run_runner(make_conninfo(**conninfo_to_dict(db_url)), "--phase", "a")
    assert result.returncode == 0, result.stderr
