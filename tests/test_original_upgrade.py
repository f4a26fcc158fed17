"""The in-place upgrade of a real energyriskiq-ops database (tests/original/: the schema its
migrations built over its history, rows as its code writes them): both deploy tools adopt
its alert tables, change none of its rows or column types, accept every write it still
makes, leave its reads' results and Python types as they were, never claim its own kinds
of delivery, run Phases A-D on it, and no failed deploy loses an adopted row."""

import json
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts import migrate
from tests.conftest import ROOT, run_runner
from tests.legacy_fixture import relfilenodes, snapshot_rows
from tests.original_fixture import (
    HOST_KIND_DELIVERIES,
    ORIGINAL_STARTUP_DDL,
    column_types,
    load_original,
    original_writes,
    run_reads,
    value_types,
)
from tests.test_migrations import as_fresh, engine_table_schema, schema_of, sqitch

ORIGINAL_ALERT_TABLES = ("alert_events", "user_alert_deliveries", "user_alert_digests", "user_alert_digest_items")


@pytest.fixture
def original_url(empty_db_url: str) -> str:
    load_original(empty_db_url)
    return empty_db_url


def original_state(url: str) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], tuple[str, str, str]]]:
    """Every row of every table, and every column's type."""
    with psycopg.connect(url, autocommit=True) as conn:
        return snapshot_rows(url), column_types(conn)


def assert_nothing_of_the_original_changed(url: str, rows: dict[str, list[dict[str, Any]]],
                                           types: dict[tuple[str, str], tuple[str, str, str]]) -> None:
    """Each original table still has each of its rows with each original column's value, and
    each original column its type; the upgrade only adds (columns, tables, constraints)."""
    after_rows, after_types = original_state(url)
    for table, table_rows in rows.items():
        columns = table_rows[0].keys() if table_rows else ()
        kept = [{column: row[column] for column in columns} for row in after_rows[table]]
        assert kept == table_rows, table
    changed = {column: (kind, after_types.get(column)) for column, kind in types.items()
               if after_types.get(column) != kind and column != ("alert_events", "cooldown_key")}
    assert changed == {}, "the original's column types are kept"
    # cooldown_key (NOT NULL without a default) accepts NULL, so the engine's INSERTs work.
    assert after_types[("alert_events", "cooldown_key")] == ("text", "text", "YES")


def adopted_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM alerts_legacy_upgrade_log "
                            "WHERE kind = 'adopted_table' ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_runner_migrate_adopts_the_original_and_changes_none_of_its_rows(original_url):
    rows, types = original_state(original_url)
    files = relfilenodes(original_url, ORIGINAL_ALERT_TABLES)
    run = run_runner(original_url, "--migrate")
    assert run.returncode == 0, run.stderr
    assert adopted_tables(original_url) == ["alert_events", "user_alert_deliveries"]
    assert_nothing_of_the_original_changed(original_url, rows, types)
    assert relfilenodes(original_url, ORIGINAL_ALERT_TABLES) == files, "no table was rewritten"
    with psycopg.connect(original_url) as conn:
        unvalidated = conn.execute("SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                                   "AND NOT convalidated").fetchall()
        assert unvalidated == []
        # The old engine's delivery stuck in 'sending' is leased, so the reclaim takes it back.
        stuck = conn.execute("SELECT status, attempts, lease_expires_at IS NOT NULL FROM user_alert_deliveries "
                             "WHERE id = 13").fetchone()
        assert stuck == ("sending", 1, True)


def test_sqitch_deploy_verify_adopts_the_original_and_a_second_deploy_changes_nothing(original_url):
    rows, types = original_state(original_url)
    sqitch(original_url, "deploy", "--verify")
    assert adopted_tables(original_url) == ["alert_events", "user_alert_deliveries"]
    assert_nothing_of_the_original_changed(original_url, rows, types)
    schema, upgraded = schema_of(original_url), snapshot_rows(original_url)
    sqitch(original_url, "deploy", "--verify")
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
    sqitch(original_url, "verify")
    assert schema_of(original_url) == schema
    assert snapshot_rows(original_url) == upgraded


def test_the_original_reads_return_the_same_rows_in_the_same_types(original_url):
    before = run_reads(original_url)
    assert all(before.values()), [name for name, rows in before.items() if not rows]
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
    after = run_reads(original_url)
    assert after == before
    assert value_types(after) == value_types(before)


def test_the_original_writes_are_accepted_after_the_upgrade_and_never_claimed(original_url):
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
        for statement in ORIGINAL_STARTUP_DDL:
            conn.execute(statement)
        for sql, params in original_writes():
            conn.execute(sql, params)
        written = conn.execute("SELECT id, delivery_kind, status, sent_at IS NOT NULL, last_error "
                               "FROM user_alert_deliveries WHERE id > 22 ORDER BY id").fetchall()
        assert [row[1:] for row in written] == [
            ("index_digest", "sent", True, None),
            ("index_digest", "skipped", True, "no_preferences"),
            ("instant", "sent", True, None),
            ("instant", "skipped", True, "email_disabled"),
        ]
        # Rows of a kind of the host's that wait in 'queued' (as a host worker queueing its own
        # sends would leave them), with and without an alert event: not the engine's to send.
        conn.execute("INSERT INTO user_alert_deliveries (id, user_id, alert_event_id, channel, status, delivery_kind, "
                     "geri_date) VALUES (900, 4, NULL, 'email', 'queued', 'index_digest', current_date + 1), "
                     "(901, 2, 2, 'telegram', 'queued', 'weekly_summary', NULL)")
        host_query = ("SELECT * FROM user_alert_deliveries "
                      "WHERE delivery_kind NOT IN ('instant', 'digest') OR alert_event_id IS NULL ORDER BY id")
        host_rows = conn.execute(host_query).fetchall()
        claimed = {row[0] for row in conn.execute("SELECT delivery_id FROM claim_deliveries(1000)").fetchall()}
        conn.execute("SELECT alerts_phase_d()")
        assert conn.execute(host_query).fetchall() == host_rows, "the host's own kinds are never claimed or digested"
        assert not claimed & {row[0] for row in written}, "rows the host recorded whole are never claimed"
        assert {10, 11} <= claimed, "the engine's own queue is claimed"
    # The application restarted and ran its own migrations: the engine's schema still verifies.
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
    sqitch(original_url, "deploy", "--verify")


def outbox_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_phases_a_to_d_send_every_queued_delivery_once(original_url, tmp_path):
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
        host_before = conn.execute("SELECT * FROM user_alert_deliveries WHERE id = ANY(%s) ORDER BY id",
                                   [list(HOST_KIND_DELIVERIES)]).fetchall()
        # Due now: the old engine's queue (one new, one whose retry time has come); the row it
        # left in 'sending' comes back after its backoff, the one retrying in an hour later.
        old_queue = conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'queued' "
                                 "AND delivery_kind = 'instant' ORDER BY id").fetchall()
        assert old_queue == [(10,), (11,), (12,)]
    outbox = tmp_path / "outbox.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}"}
    for _ in range(2):
        run = run_runner(original_url, "--phase", "all", env=env)
        assert run.returncode == 0, run.stderr
    lines = outbox_lines(outbox)
    instant = [line["delivery_id"] for line in lines if line["kind"] == "delivery"]
    assert len(instant) == len(set(instant)), "no delivery is sent twice"
    with psycopg.connect(original_url, autocommit=True) as conn:
        sent_now = {row[0] for row in conn.execute(
            "SELECT id FROM user_alert_deliveries WHERE status = 'sent' AND claimed_at IS NOT NULL").fetchall()}
        assert set(instant) == sent_now
        assert {10, 11} <= sent_now, "the old engine's due queue is sent"
        new_events = conn.execute("SELECT event_fingerprint FROM alert_events WHERE id > 6 ORDER BY id").fetchall()
        assert new_events == [("HIGH_IMPACT_EVENT:103",)], "events the old engine alerted on are not alerted again"
        fanned = conn.execute("SELECT DISTINCT alert_event_id FROM user_alert_deliveries "
                              "WHERE claimed_at IS NOT NULL ORDER BY 1").fetchall()
        assert (6,) in fanned, "the event the old engine created but never fanned out reaches its users"
        due = conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued' "
                           "AND delivery_kind = 'instant' AND coalesce(next_retry_at, created_at) <= now()").fetchone()
        assert due == (0,)
        digested = conn.execute("SELECT status FROM user_alert_deliveries WHERE id = 15").fetchone()
        assert digested != ("queued",), "the old engine's waiting digest delivery went into a digest"
        host_after = conn.execute("SELECT * FROM user_alert_deliveries WHERE id = ANY(%s) ORDER BY id",
                                  [list(HOST_KIND_DELIVERIES)]).fetchall()
    assert [row[:len(host_before[0])] for row in host_after] == host_before, "the host's kinds are left alone"


def test_a_sqitch_deploy_failing_midway_keeps_every_adopted_row(original_url):
    rows, types = original_state(original_url)
    with psycopg.connect(original_url, autocommit=True) as conn:
        # An object in the way of a later change: lock_keys cannot replace this function, so
        # Sqitch reverts every change it deployed in this run, engine_tables' included.
        conn.execute("CREATE FUNCTION alerts_lock_key(name text) RETURNS text LANGUAGE sql AS $$ SELECT name $$")
    failed = sqitch(original_url, "deploy", "--verify", succeed=False)
    assert "lock_keys" in failed.stdout + failed.stderr
    assert "revert" in (failed.stdout + failed.stderr).lower()  # Sqitch reverted what this run deployed
    assert adopted_tables(original_url) == ["alert_events", "user_alert_deliveries"]
    assert_nothing_of_the_original_changed(original_url, rows, types)
    with psycopg.connect(original_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION alerts_lock_key(text)")
    sqitch(original_url, "deploy", "--verify")
    assert_nothing_of_the_original_changed(original_url, rows, types)


def test_checks_an_interrupted_earlier_upgrade_left_behind_are_replaced(original_url):
    """An earlier version of the upgrade stopped half-way on this database, leaving NOT VALID
    CHECKs that already rejected the pro worker's rows; the upgrade replaces them."""
    index_digest, params = original_writes()[0]
    with psycopg.connect(original_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_delivery_kind_check "
                     "CHECK (delivery_kind IN ('instant', 'digest')) NOT VALID")
        conn.execute("ALTER TABLE user_alert_deliveries ADD CONSTRAINT user_alert_deliveries_sent_has_sent_at "
                     "CHECK ((status = 'sent') = (sent_at IS NOT NULL)) NOT VALID")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(index_digest, params)
        migrate.deploy(conn)
        conn.execute(index_digest, params)
        kinds = conn.execute("SELECT delivery_kind, status, sent_at IS NOT NULL FROM user_alert_deliveries "
                             "WHERE id > 22").fetchall()
        assert kinds == [("index_digest", "failed", True)]


def test_prune_deletes_only_the_engines_own_deliveries(original_url):
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
        # rows older than an hour made older than alerts_config.min_retention (2 days), the shortest
        # retention alerts_prune() accepts
        conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '2 days' "
                     "WHERE created_at < now() - interval '1 hour'")
        while conn.execute("SELECT alerts_prune(interval '2 days 1 hour', 2)").fetchone()[0]:
            pass
        left = conn.execute("SELECT id FROM user_alert_deliveries WHERE status IN ('sent', 'skipped') "
                            "ORDER BY id").fetchall()
    # Kept: the web account's rows (2, 8, 14, 17) and the pro worker's kinds (19, 21, 22).
    assert left == [(2,), (8,), (14,), (17,), (19,), (21,), (22,)]


def rollback_blocks() -> list[str]:
    """The SQL blocks of docs/DBA.md, "Rolling back to the old alerts runner", in order: the way
    back to the old runner, then the way back to the engine."""
    text = (ROOT / "docs" / "DBA.md").read_text(encoding="utf-8")
    section = text.split("### Rolling back to the old alerts runner", 1)[1].split("\n#", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```sql")[1:]]
    assert len(blocks) == 2, "the section has the way back and the way forward"
    return [textwrap.dedent(block) for block in blocks]


def old_runner_claims_and_records(conn: psycopg.Connection) -> None:
    """The old alerts runner's own statements: claim, then sent / retry; one claim left mid-send."""
    conn.execute("UPDATE user_alert_deliveries SET status = 'sending', attempts = COALESCE(attempts, 0) + 1 "
                 "WHERE id = ANY(%s)", [[10, 11, 12]])
    conn.execute("UPDATE user_alert_deliveries SET status = 'sent', sent_at = NOW(), provider_message_id = %s, "
                 "last_error = NULL WHERE id = %s", ["msg-10", 10])
    conn.execute("UPDATE user_alert_deliveries SET status = 'queued', last_error = %s, "
                 "next_retry_at = NOW() + make_interval(secs => %s) WHERE id = %s", ["timeout", 120, 11])


def test_the_documented_way_back_to_the_old_runner_with_the_engine_kept_deployed(original_url):
    """docs/DBA.md's blocks on an upgraded database: the old runner's claim and outcomes are
    accepted (a row the engine held in 'sending' is handed back); the way forward puts the CHECKs
    back and Phase C takes the old runner's unfinished claim back after its lease."""
    assert run_runner(original_url, "--migrate").returncode == 0
    back, forward = rollback_blocks()
    with psycopg.connect(original_url, autocommit=True) as conn:
        claimed = conn.execute("SELECT delivery_id FROM claim_deliveries(1) LIMIT 1").fetchone()
        assert claimed is not None, "the engine holds a row in 'sending' when it is stopped"
        conn.execute(back)
        assert conn.execute("SELECT status FROM user_alert_deliveries WHERE id = %s", claimed).fetchone() == (
            "queued",)
        old_runner_claims_and_records(conn)
        conn.execute(forward)
        after = conn.execute("SELECT id, status, attempts, lease_expires_at IS NOT NULL FROM user_alert_deliveries "
                             "WHERE id IN (10, 11, 12) ORDER BY id").fetchall()
        assert after[0][:2] == (10, "sent") and after[1][:2] == (11, "queued") and after[2][1:] == ("sending", 3, True)
        invalid = conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'user_alert_deliveries'::regclass "
                               "AND NOT convalidated").fetchone()
        assert invalid == (0,)
        assert conn.execute("SELECT reclaim_expired_deliveries()").fetchone()[0]["requeued"] >= 1
    assert migrate_check(original_url) == []


def migrate_check(url: str) -> list[str]:
    run = run_runner(url, "--migrate", "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)["pending"]


def test_rolling_back_to_the_old_alerts_runner_and_upgrading_again(original_url):
    """docs/DBA.md's way back after a Sqitch revert: the old sender's statements work; a later
    deploy completes again."""
    rows = snapshot_rows(original_url)
    sqitch(original_url, "deploy", "--verify")
    sqitch(original_url, "revert", "-y")
    with psycopg.connect(original_url, autocommit=True) as conn:
        conn.execute(rollback_blocks()[0])
        old_runner_claims_and_records(conn)
    assert adopted_tables(original_url) == ["alert_events", "user_alert_deliveries"]
    sqitch(original_url, "deploy", "--verify")
    with psycopg.connect(original_url) as conn:
        after = conn.execute("SELECT id, status, attempts, lease_expires_at IS NOT NULL FROM user_alert_deliveries "
                             "WHERE id IN (10, 11, 12) ORDER BY id").fetchall()
    assert after == [(10, "sent", 1, False), (11, "queued", 2, False), (12, "sending", 3, True)]
    # 13 was held in 'sending' under a lease when the engine stopped: the way back handed it back.
    touched = (10, 11, 12, 13)
    others = [row for row in rows["user_alert_deliveries"] if row["id"] not in touched]
    current = snapshot_rows(original_url, ("user_alert_deliveries",))["user_alert_deliveries"]
    assert [{column: row[column] for column in others[0]} for row in current if row["id"] not in touched] == others
    assert [row["status"] for row in current if row["id"] == 13] == ["queued"]


def test_the_upgraded_original_has_everything_a_fresh_deploy_has(original_url, db_url):
    """Every column, constraint and index of a fresh deploy's engine tables exists on the
    adopted ones by name (types and CHECK definitions as docs/DBA.md says), with the same
    functions and configuration."""
    with psycopg.connect(original_url, autocommit=True) as conn:
        migrate.deploy(conn)
    upgraded, fresh = engine_table_schema(original_url), engine_table_schema(db_url)
    for part in ("columns", "constraints", "indexes"):
        names = {row[:2] for row in upgraded[part]}
        assert {row[:2] for row in fresh[part]} <= names, part
    same = as_fresh(upgraded, fresh)
    # The host's own column properties, kept: rows of its kinds have no alert event, its old
    # events may lack a region or driver events, its writers give body and severity.
    kept = {(table, column): (nullable, default) for table, column, _, nullable, default in same["columns"]}
    assert {row[:2]: kept[row[:2]] for row in fresh["columns"] if row not in same["columns"]} == {
        ("user_alert_deliveries", "alert_event_id"): ("YES", None),
        ("alert_events", "scope_region"): ("YES", None),
        ("alert_events", "driver_event_ids"): ("YES", None),
        ("alert_events", "body"): ("NO", None),
        ("alert_events", "severity"): ("NO", "3"),
    }
    checks = {(table, name): definition for table, name, definition in same["constraints"]}
    differing = {name for table, name, definition in fresh["constraints"] if checks.get((table, name)) != definition}
    # The host's own CHECKs under the engine's names: its channel list (with 'account'), its alert types.
    assert differing == {"user_alert_deliveries_channel_check", "alert_events_alert_type_check"}
    upgraded_whole, fresh_whole = schema_of(original_url), schema_of(db_url)
    assert upgraded_whole["functions"] == fresh_whole["functions"]
    assert upgraded_whole["config"] == fresh_whole["config"]
