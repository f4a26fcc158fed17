"""The runner's contract: exit codes, one-line errors without tracebacks, dry runs that change nothing."""

import json
import subprocess

import pytest

import runner
from tests import seed
from tests.conftest import run_runner


def _assert_one_line_error(result, code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_database_url():
    _assert_one_line_error(run_runner(None, "--phase", "a"), 2, "DATABASE_URL is not set")


def _assert_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    """The arguments alone are refused, in-process: exit 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        runner.parse_args(argv)
    captured = capsys.readouterr()
    _assert_one_line_error(subprocess.CompletedProcess(argv, exit_info.value.code, captured.out, captured.err),
                           2, *needles)


def test_unknown_phase(capsys):
    _assert_usage_error(["--phase", "z"], capsys, "invalid choice: 'z'")


def test_no_action(capsys):
    _assert_usage_error([], capsys, "nothing to do")


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_send_cap(db_url, value):
    result = run_runner(db_url, "--phase", "c", env={"ALERTS_MAX_SEND_PER_RUN": value, "ALERTS_SENDER": "console"})
    _assert_one_line_error(result, 2, "ALERTS_MAX_SEND_PER_RUN must be a positive integer")


def test_unknown_sender(db_url):
    _assert_one_line_error(run_runner(db_url, "--phase", "c", env={"ALERTS_SENDER": "pigeon"}), 2, "pigeon")


def test_unreachable_database_masks_the_password():
    result = run_runner("postgresql://alerts:hunter2secret@127.0.0.1:1/alerts", "--phase", "a")
    _assert_one_line_error(result, 1, "cannot connect", "alerts:***@127.0.0.1:1")
    assert "hunter2secret" not in result.stderr + result.stdout


def test_schema_never_deployed(empty_db_url):
    _assert_one_line_error(run_runner(empty_db_url, "--phase", "b"), 1, "schema is not deployed", "--migrate")


def test_dry_run_reports_real_counts_and_changes_nothing(conn, db_url, tmp_path):
    seed.population(conn, users=4, events=3)
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "all", "--dry-run", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    a, b, d, c = (json.loads(line) for line in result.stdout.splitlines())
    assert (a["created"], b["deliveries_created"], d["digests_created"], c["would_send"]) == (3, 12, 0, 12)
    assert all(counts["dry_run"] is True for counts in (a, b, d, c))
    assert conn.execute("SELECT (SELECT count(*) FROM alert_events) + "
                        "(SELECT count(*) FROM user_alert_deliveries)").fetchone() == (0,)
    assert not outbox.exists()


def test_dry_run_of_phase_c_claims_nothing(conn, db_url):
    seed.population(conn, users=4, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    result = run_runner(db_url, "--phase", "c", "--dry-run")
    assert result.returncode == 0 and json.loads(result.stdout)["would_send"] == 4
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'").fetchone() == (4,)


def test_dry_run_migrate_deploys_nothing(empty_db_url):
    result = run_runner(empty_db_url, "--migrate", "--dry-run")
    assert result.returncode == 0 and "host_tables" in json.loads(result.stdout)["would_apply"]
    _assert_one_line_error(run_runner(empty_db_url, "--phase", "a"), 1, "schema is not deployed")


def test_all_runs_a_then_b_then_d_then_c(conn, db_url, tmp_path):
    seed.population(conn, users=2, events=2)
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"})
    assert result.returncode == 0, result.stderr
    phases = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["phase"] for p in phases] == ["a", "b", "d", "c"]
    assert phases[3]["sent"] == 4


def test_unset_sender_is_a_loud_error_that_claims_nothing(conn, db_url):
    seed.population(conn, users=2, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    _assert_one_line_error(run_runner(db_url, "--phase", "c"), 2, "no provider is configured")
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'").fetchone() == (2,)
