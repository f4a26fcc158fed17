"""Migrations: Sqitch and `runner.py --migrate` give the same schema; both are idempotent;
host tables are created only when missing and only gain columns."""

import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg
import pytest

from alerts import migrate
from alerts.errors import AlertsError
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
        SELECT p.oid::regprocedure::text, p.prosrc, p.proconfig, obj_description(p.oid, 'pg_proc'), p.proacl::text
          FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1""",
    "comments": """
        SELECT c.relname, a.attname, d.description
          FROM pg_description d
          JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
         WHERE c.relnamespace = 'public'::regnamespace
         ORDER BY 1, 2 NULLS FIRST""",
    "config": "SELECT * FROM alerts_config",
}


def schema_of(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SCHEMA_QUERIES.items()}


def sqitch_target(url: str) -> str:
    """The Sqitch target of a libpq URL (without its password)."""
    parts = urlsplit(url)
    return f"db:pg://{parts.username or 'postgres'}@{parts.hostname}:{parts.port or 5432}{parts.path}"


def sqitch(url: str, *args: str, succeed: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `sqitch ARGS target`; it must succeed (or, with succeed=False, fail)."""
    if shutil.which("sqitch") is None:
        pytest.fail("sqitch is not installed: apt-get install sqitch libdbd-pg-perl", pytrace=False)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "SQITCH_PASSWORD": urlsplit(url).password or ""}
    result = subprocess.run(["sqitch", *args, sqitch_target(url)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert (result.returncode == 0) == succeed, result.stdout + result.stderr
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


def _changed_functions(new: dict[str, list[tuple]], old: dict[str, list[tuple]]) -> set[str]:
    before, after = ({row[0]: row for row in schema["functions"]} for schema in (old, new))
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def test_reworked_functions_upgrade_each_release_and_revert_to_it(empty_db_url, db_url):
    """An installation at @v1.0 or @v1.1 (the landed releases) gets the reworked functions from a
    plain `sqitch deploy`; reverting to a release puts back exactly what it had, grants included."""
    sqitch(empty_db_url, "deploy", "--verify", "--to", "@v1.0")
    at_v1_0 = schema_of(empty_db_url)
    sqitch(empty_db_url, "deploy", "--verify", "--to", "@v1.1")
    at_v1_1 = schema_of(empty_db_url)
    assert _changed_functions(at_v1_1, at_v1_0) == {
        "alerts_phase_a()", "alerts_phase_b()", "alerts_analyze_if_stale()", "mark_deliveries_sent(bigint[],text[])"}
    sqitch(empty_db_url, "deploy", "--verify")
    upgraded = schema_of(empty_db_url)
    assert upgraded == schema_of(db_url)
    fenced = _changed_functions(upgraded, at_v1_1)
    assert {"release_deliveries(bigint[])", "release_deliveries(bigint[],bigint[])",
            "record_digest_outcomes(text,bigint[],bigint[],text[])", "claim_deliveries(integer,text[])"} <= fenced
    assert "alerts_prune(interval,integer)" in fenced, "reworked after @v1.1 too: prunes only the engine's kinds"
    sqitch(empty_db_url, "revert", "-y", "--to", "@v1.1")
    assert schema_of(empty_db_url) == at_v1_1
    # The hardening: functions run as alerts_owner, spike thresholds, escaped fingerprints.
    assert {"alerts_phase_a()", "alerts_phase_b()", "alerts_analyze_if_stale()", "alerts_assign_owner()",
            "alerts_table_is_adopted(text)", "alerts_fingerprint_part(text)"} <= fenced
    sqitch(empty_db_url, "revert", "-y", "--to", "@v1.0")
    assert schema_of(empty_db_url) == at_v1_0


def test_plan_reader_runs_each_version_of_a_reworked_change(tmp_path):
    plan = tmp_path / "sqitch.plan"
    plan.write_text("%project=x\n\nfirst 2026-01-01T00:00:00Z A <a@b> # one\n@v1 2026-01-01T00:00:00Z A <a@b> # tag\n"
                    "second 2026-01-01T00:00:00Z A <a@b> # two\n"
                    "first [first@v1] 2026-01-02T00:00:00Z A <a@b> # reworked\n", encoding="utf-8")
    assert [change.script for change in migrate.read_plan(plan)] == ["first@v1", "second", "first"]
    plan.write_text("first 2026-01-01T00:00:00Z A <a@b> # one\nfirst 2026-01-02T00:00:00Z A <a@b> # again\n",
                    encoding="utf-8")
    with pytest.raises(AlertsError, match="no tag follows it"):
        migrate.read_plan(plan)


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
            assert (migrate.MIGRATIONS_DIR / kind / f"{change.script}.sql").is_file(), (kind, change.script)


# What an upgraded pre-v2 database keeps beyond a fresh deploy's engine tables, on purpose:
# its own columns, v1's dedupe key, the unique index v1's ON CONFLICT statements need, and
# v1's indexes (docs/DBA.md, "The legacy upgrade").
LEGACY_EXTRAS = {
    "columns": {("alert_events", "cooldown_key", "text", "YES", None),
                ("user_alert_deliveries", "opened_at", "timestamp without time zone", "YES", None)},
    "constraints": {("alert_events", "alert_events_cooldown_key_key", "UNIQUE (cooldown_key)")},
    "indexes": {
        ("alert_events_cooldown_key_key",
         "CREATE UNIQUE INDEX alert_events_cooldown_key_key ON public.alert_events USING btree (cooldown_key)"),
        ("alert_events_created_at_idx",
         "CREATE INDEX alert_events_created_at_idx ON public.alert_events USING btree (created_at)"),
        ("user_alert_deliveries_status_created_idx",
         "CREATE INDEX user_alert_deliveries_status_created_idx ON public.user_alert_deliveries "
         "USING btree (status, created_at)"),
        ("user_alert_deliveries_user_event_channel_uidx",
         "CREATE UNIQUE INDEX user_alert_deliveries_user_event_channel_uidx ON public.user_alert_deliveries "
         "USING btree (user_id, alert_event_id, channel)"),
    },
}
# On an adopted table the host's column types are kept (the engine reads and writes naive
# timestamps as UTC), and three CHECKs admit what the host's own writers store: a kind of
# its own, and outcomes recorded whole (attempts = 0) (docs/DBA.md, "The legacy upgrade").
HOST_TYPES_KEPT = {("timestamp without time zone", "timestamp with time zone"), ("integer", "bigint")}
ADOPTED_CHECKS = {
    "user_alert_deliveries_delivery_kind_check": "CHECK ((delivery_kind <> ''::text))",
    "user_alert_deliveries_sent_has_sent_at":
        "CHECK ((((status = 'sent'::text) = (sent_at IS NOT NULL)) OR (attempts = 0)))",
    "user_alert_deliveries_failed_has_error":
        "CHECK (((status <> 'failed'::text) OR (last_error IS NOT NULL) OR (attempts = 0)))",
}


def as_fresh(upgraded: dict[str, set[tuple]], fresh: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    """The upgraded engine tables' schema with the host's kept column types and the adopted
    CHECKs replaced by what a fresh deploy has in their place, so the rest compares exactly.
    A type or CHECK that differs in any other way is left as it is (and fails the comparison)."""
    fresh_types = {(table, column): kind for table, column, kind, *_ in fresh["columns"]}
    fresh_checks = {(table, name): definition for table, name, definition in fresh["constraints"]}
    columns = set()
    for table, column, kind, nullable, default in upgraded["columns"]:
        wanted = fresh_types.get((table, column))
        columns.add((table, column, wanted if (kind, wanted) in HOST_TYPES_KEPT else kind, nullable, default))
    constraints = {(table, name, fresh_checks[(table, name)] if ADOPTED_CHECKS.get(name) == definition else definition)
                   for table, name, definition in upgraded["constraints"]}
    return {**upgraded, "columns": columns, "constraints": constraints}


ENGINE_TABLE_OPTIONS = """
    SELECT relname, reloptions FROM pg_class
     WHERE oid IN ('alert_events'::regclass, 'user_alert_deliveries'::regclass) ORDER BY 1"""


def engine_table_schema(url: str) -> dict[str, set[tuple]]:
    """Columns, constraints and indexes of alert_events and user_alert_deliveries, and their storage options."""
    schema = schema_of(url)
    engine = ("alert_events", "user_alert_deliveries")
    with psycopg.connect(url) as conn:
        options = conn.execute(ENGINE_TABLE_OPTIONS).fetchall()
    return {
        "columns": {row for row in schema["columns"] if row[0] in engine},
        # PostgreSQL 18 lists NOT NULL as constraints too; nullability is compared with the columns
        "constraints": {row for row in schema["constraints"] if row[0] in engine and not row[2].startswith("NOT NULL")},
        "indexes": {row for row in schema["indexes"] if row[1].split(" ON public.")[1].split(" ")[0] in engine},
        "options": {(name, tuple(value or ())) for name, value in options},
    }


def test_upgraded_legacy_database_matches_a_fresh_deploy(empty_db_url, db_url):
    from tests.legacy_fixture import load_legacy

    load_legacy(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.deploy(conn)
    fresh = engine_table_schema(db_url)
    upgraded = as_fresh(engine_table_schema(empty_db_url), fresh)
    for part, rows in upgraded.items():
        assert rows - fresh[part] == LEGACY_EXTRAS.get(part, set()), part
        assert fresh[part] <= rows, (part, fresh[part] - rows)
    upgraded_all, fresh_all = schema_of(empty_db_url), schema_of(db_url)
    assert upgraded_all["functions"] == fresh_all["functions"]
    assert upgraded_all["config"] == fresh_all["config"]


def test_scripts_are_split_as_psql_splits_them():
    script = ("-- a comment; with a semicolon\nSELECT 'a;b', $$x;y$$, $f$ $$; $f$, E'\\';', \"c;d\";\n"
              "/* outer /* nested; */ still; */ SELECT 1\n\\gexec\nDO $$ BEGIN PERFORM 1; END $$;\n")
    assert migrate.split_statements(script) == [
        migrate.Statement("SELECT 'a;b', $$x;y$$, $f$ $$; $f$, E'\\';', \"c;d\""),
        migrate.Statement("SELECT 1", gexec=True),
        migrate.Statement("DO $$ BEGIN PERFORM 1; END $$"),
    ]


def test_only_the_scripts_that_need_it_run_statement_by_statement():
    """CREATE INDEX CONCURRENTLY, committed batches, a constraint validated after the transaction that
    added it, and \\gexec need autocommit statements; every other script is one transaction, sent in one piece."""
    by_statement = {change.name for change in migrate.read_plan()
                    if not migrate.is_single_transaction(migrate.split_statements(
                        migrate.load_script(change.deploy_script)))}
    assert by_statement == {"legacy_upgrade_events", "legacy_upgrade_deliveries", "indexes_concurrently",
                            "digests_indexes", "claim_tokens", "alert_events_spike_fields", "bounded_statements",
                            "source_indexes"}


def _statements(script) -> list[str]:  # noqa: ANN001 - a Path
    return [line for line in migrate.load_script(script).splitlines()
            if line.strip() and not line.lstrip().startswith("--")]


@pytest.mark.parametrize("change", ["record_outcomes", "digests", "phase_b_fanout"])
def test_a_frozen_copy_for_a_rework_deploys_exactly_what_the_change_deploys_now(tmp_path, change):
    """scripts/freeze_rework.py inlines every function file the change includes, so the @tag copy keeps
    today's functions after they are edited; revert and verify are copied as they are."""
    for folder in ("db", "scripts"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    frozen = subprocess.run([sys.executable, str(tmp_path / "scripts" / "freeze_rework.py"), change, "v9.9"],
                            capture_output=True, text=True, timeout=60)
    assert frozen.returncode == 0, frozen.stderr
    migrations = tmp_path / "db" / "migrations"
    copy = migrations / "deploy" / f"{change}@v9.9.sql"
    assert "\\ir" not in copy.read_text(encoding="utf-8")
    assert _statements(copy) == _statements(migrations / "deploy" / f"{change}.sql")
    for kind in ("revert", "verify"):
        frozen_script, live_script = (migrations / kind / f"{change}{tag}.sql" for tag in ("@v9.9", ""))
        assert frozen_script.read_text() == live_script.read_text()
