"""Migrations: Sqitch and `runner.py --migrate` give the same schema; both are idempotent;
host tables are created only when missing and only gain columns."""

import shutil
import subprocess
from urllib.parse import urlsplit

import psycopg
import pytest

from alerts import migrate
from tests.conftest import ROOT, run_runner

SCHEMA_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
          FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "functions": """
        SELECT p.oid::regprocedure::text, p.prosrc, p.proconfig, obj_description(p.oid, 'pg_proc')
          FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1""",
    "config": "SELECT * FROM alerts_config",
}


def schema_of(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SCHEMA_QUERIES.items()}


def sqitch(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("sqitch") is None:
        pytest.fail("sqitch is not installed: apt-get install sqitch libdbd-pg-perl", pytrace=False)
    parts = urlsplit(url)
    target = f"db:pg://{parts.username or 'postgres'}@{parts.hostname}:{parts.port or 5432}{parts.path}"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "SQITCH_PASSWORD": parts.password or ""}
    result = subprocess.run(["sqitch", *args, target], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_sqitch_and_runner_deploy_the_same_schema(empty_db_url, db_url):
    sqitch(empty_db_url, "deploy", "--verify")
    assert schema_of(empty_db_url) == schema_of(db_url)


def test_sqitch_round_trip_and_either_tool_after_the_other(empty_db_url, db_url):
    reference = schema_of(db_url)
    sqitch(empty_db_url, "deploy", "--verify")
    sqitch(empty_db_url, "verify")
    run = run_runner(empty_db_url, "--migrate")
    assert run.returncode == 0, run.stderr
    assert schema_of(empty_db_url) == reference
    sqitch(empty_db_url, "revert", "-y")
    with psycopg.connect(empty_db_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace").fetchone()
        assert left == (0,)
        assert conn.execute("SELECT to_regclass('alert_events'), to_regclass('users') IS NOT NULL").fetchone() == (
            None, True)
    sqitch(empty_db_url, "deploy", "--verify")
    assert schema_of(empty_db_url) == reference


def test_runner_migrate_twice_is_harmless(db_url, conn):
    conn.execute("INSERT INTO users (email) VALUES ('kept@example.com')")
    conn.execute("UPDATE alerts_config SET high_impact_min_severity = 5")
    before = schema_of(db_url)
    for _ in range(2):
        migrate.deploy(conn)
    assert schema_of(db_url) == before
    assert conn.execute("SELECT email FROM users").fetchall() == [("kept@example.com",)]


def test_existing_host_tables_gain_missing_columns_and_keep_everything(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id integer PRIMARY KEY, email varchar(200), legacy_flag boolean)")
        conn.execute("INSERT INTO users VALUES (7, 'old@example.com', true)")
        conn.execute("CREATE TABLE events (id integer PRIMARY KEY, title text, region text, severity_score smallint,"
                     " inserted_at timestamp without time zone DEFAULT now())")
        migrate.deploy(conn)
        columns = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'users'").fetchall())
        assert columns["email"] == "character varying" and columns["legacy_flag"] == "boolean"
        assert {"email_verified", "telegram_chat_id", "phone_number", "created_at"} <= columns.keys()
        assert conn.execute("SELECT id, email, legacy_flag FROM users").fetchall() == [(7, "old@example.com", True)]
        conn.execute("INSERT INTO events (id, title, region, severity_score) VALUES (1, 'Blast', 'Europe', 5)")
        counts = conn.execute("SELECT alerts_phase_a()").fetchone()
        assert counts is not None and counts[0]["created"] == 1


def test_every_deploy_script_has_revert_and_verify():
    for change in migrate.read_plan():
        for kind in ("revert", "verify"):
            assert (migrate.MIGRATIONS_DIR / kind / f"{change.name}.sql").is_file(), (kind, change.name)
