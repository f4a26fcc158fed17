"""Operations: least-privilege roles, run history, --status thresholds, retention, invalid destinations."""

import json

import psycopg
import pytest
from psycopg import sql

from alerts.db import REQUIRED_FUNCTIONS
from tests import seed
from tests.conftest import run_runner


def _fan_out(conn: psycopg.Connection, users: int = 3, events: int = 1) -> None:
    seed.population(conn, users=users, events=events)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")


@pytest.fixture
def login_as(admin_url: str, db_url: str):
    """A login role that is a member of the given group role, and a URL that connects as it."""
    created: list[str] = []

    def make(group: str) -> str:
        name = f"alerts_test_{group.removeprefix('pg_')}_login"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(name),
                                                                            sql.Identifier(group)))
        created.append(name)
        return db_url.replace("://postgres@", f"://{name}@", 1)

    yield make
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in created:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_runner_role_runs_the_pipeline_but_cannot_touch_tables(conn, db_url, login_as, tmp_path):
    seed.population(conn, users=3, events=2)
    runner_url = login_as("alerts_runner")
    result = run_runner(runner_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["sent"] == 6
    with psycopg.connect(runner_url, autocommit=True) as runner:
        for statement in ("SELECT * FROM user_alert_deliveries", "SELECT email FROM users",
                          "UPDATE user_alert_deliveries SET status = 'queued'",
                          "DELETE FROM alert_events", "INSERT INTO alerts_runs (phase) VALUES ('a')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                runner.execute(statement)


def test_readonly_role_reads_engine_tables_and_status_only(conn, login_as):
    _fan_out(conn)
    readonly_url = login_as("alerts_readonly")
    with psycopg.connect(readonly_url, autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (3,)
        assert reader.execute("SELECT alerts_status() ->> 'queued_due'").fetchone() == ("3",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT * FROM claim_deliveries(1)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE alerts_config SET max_attempts = 1")


def test_public_cannot_execute_engine_functions(conn, login_as):
    login_as("pg_monitor")  # a login with no alerts role at all
    executable = conn.execute(
        "SELECT f FROM unnest(%s::text[]) AS f "
        "WHERE has_function_privilege('alerts_test_monitor_login', f::regprocedure, 'EXECUTE')",
        [list(REQUIRED_FUNCTIONS)]).fetchall()
    assert executable == []


def test_every_run_is_recorded_and_dry_runs_are_not(conn, db_url, tmp_path):
    seed.population(conn, users=2, events=1)
    run_runner(db_url, "--phase", "all", "--dry-run")
    assert conn.execute("SELECT count(*) FROM alerts_runs").fetchone() == (0,)
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"})
    assert result.returncode == 0, result.stderr
    runs = conn.execute("SELECT phase, status, counts ->> 'phase', finished_at >= started_at "
                        "FROM alerts_runs ORDER BY id").fetchall()
    assert runs == [("a", "ok", "a", True), ("b", "ok", "b", True), ("d", "ok", "d", True), ("c", "ok", "c", True)]


def test_a_failed_run_is_recorded_with_its_error(conn, db_url):
    conn.execute("DELETE FROM alerts_config")
    result = run_runner(db_url, "--phase", "a")
    assert result.returncode == 1 and "alerts_config has no row" in result.stderr
    row = conn.execute("SELECT phase, status, error FROM alerts_runs").fetchone()
    assert row is not None and row[:2] == ("a", "failed") and "alerts_config has no row" in row[2]


def test_status_is_healthy_then_red_on_stuck_rows(conn, db_url):
    _fan_out(conn)
    healthy = run_runner(db_url, "--status")
    assert healthy.returncode == 0, healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["queued_due"] == 3 and report["healthy"] is True and report["breaches"] == []
    conn.execute("SELECT claim_deliveries(1)")
    conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 minute' "
                 "WHERE status = 'sending'")
    stuck = run_runner(db_url, "--status")
    assert stuck.returncode == 1
    assert json.loads(stuck.stdout)["breaches"] == ["stuck_sending is 1, above ALERTS_STATUS_MAX_STUCK=0"]
    conn.execute("UPDATE user_alert_deliveries SET created_at = now() - interval '1 hour' WHERE status = 'queued'")
    old = run_runner(db_url, "--status", env={"ALERTS_STATUS_MAX_STUCK": "5"})
    assert old.returncode == 1 and "oldest_due_age_seconds" in json.loads(old.stdout)["breaches"][0]


def test_prune_deletes_only_old_finished_rows(conn, db_url, tmp_path):
    _fan_out(conn, users=4)
    run_runner(db_url, "--phase", "c", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}",
                                            "ALERTS_MAX_SEND_PER_RUN": "2"})
    # two sent, two queued; make everything old
    conn.execute("UPDATE user_alert_deliveries SET created_at = now() - interval '100 days'")
    conn.execute("UPDATE alerts_runs SET started_at = now() - interval '100 days', "
                 "finished_at = now() - interval '100 days'")
    result = run_runner(db_url, "--prune")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == 3  # 2 sent deliveries + 1 run
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [
        ("queued", 2)]
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (1,)


def test_invalid_destinations_are_skipped_with_a_reason_not_retried(conn, db_url, tmp_path):
    seed.plan(conn, "pro", delivery_config={"email": {"enabled": True}, "telegram": {"enabled": True},
                                            "sms": {"enabled": True}})
    bad = seed.user(conn, email="not-an-address", telegram_chat_id="chat me", phone_number="555-1234")
    good = seed.user(conn, email="ok@example.com", telegram_chat_id="-100123", phone_number="+447700900123")
    for user in (bad, good):
        seed.pref(conn, user)
    seed.event(conn)
    outbox = tmp_path / "o.jsonl"
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    rows = conn.execute("SELECT user_id, channel, status, last_error FROM user_alert_deliveries "
                        "ORDER BY user_id, channel").fetchall()
    assert [(u, c, s) for u, c, s, _ in rows] == [
        (bad, "email", "skipped"), (bad, "sms", "skipped"), (bad, "telegram", "skipped"),
        (good, "email", "sent"), (good, "sms", "sent"), (good, "telegram", "sent")]
    assert "E.164" in rows[1][3] and "555-1234" not in rows[1][3]
    assert len(outbox.read_text().splitlines()) == 3


def test_hostile_source_text_reaches_the_outbox_intact(conn, db_url, tmp_path):
    seed.plan(conn, "pro", delivery_config={"telegram": {"enabled": False}})
    user = seed.user(conn)
    seed.pref(conn, user)
    hostile = "Robert'); DROP TABLE users;-- <script>alert(1)</script> \u202e émoji 🔥 " + "x" * 5000
    seed.event(conn, title=hostile)
    outbox = tmp_path / "o.jsonl"
    assert run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"}).returncode == 0
    line = json.loads(outbox.read_text())
    # the email's text holds the headline as Phase A cut it; the subject, a header, its first characters
    assert line["body"].startswith(hostile[:200] + "\n")
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
    assert line["subject"].startswith("[High-impact event 5/5] " + hostile[:100]) and len(line["subject"]) == 200
