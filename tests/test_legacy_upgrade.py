"""The in-place upgrade of a pre-v2 production database (tests/legacy/): every row that is
not a duplicate survives with every column and value, duplicates are merged as specified,
no duplicate is left, old events count as fanned out, a second deploy changes nothing,
Sqitch's round trip keeps the legacy data, and the pipeline runs on the result."""

import hashlib
import threading
import time
from typing import Any

import psycopg
import pytest

from alerts import migrate
from alerts.errors import AlertsError
from tests.conftest import run_runner
from tests.dbtools import forget_deployed_from
from tests.legacy_fixture import (
    ENGINE_TABLES,
    HOST_TABLES,
    Rows,
    by_id,
    load_legacy,
    relfilenodes,
    snapshot_rows,
)
from tests.test_migrations import schema_of, sqitch

LEGACY_TABLES = HOST_TABLES + ENGINE_TABLES

# Duplicate events: copy -> the oldest copy, which is kept.
EVENT_MERGES = {2: 1, 5: 4, 6: 4, 9: 8, 12: 11, 15: 14}
# Duplicate deliveries once their events are merged: removed row -> the row kept.
DELIVERY_MERGES = {2: 1, 3: 4, 6: 5, 9: 8, 11: 10, 13: 12, 14: 12, 16: 15, 18: 17, 20: 19, 22: 23, 25: 24, 27: 26}
# Legacy status -> status after the upgrade (anything else outside the contract: failed).
CONTRACT_STATUSES = ("queued", "sending", "sent", "failed", "skipped")
STATUS_MAP = {"pending": "queued", "delivered": "sent", "queued": "queued", "sending": "sending", "sent": "sent",
              "failed": "failed", "skipped": "skipped"}


def legacy_fallback(alert_type: str, region: str, day: str, assets: list[str], headline: str) -> str:
    digest = hashlib.sha256((",".join(assets) + "\n" + headline).encode("utf-8")).hexdigest()[:16]
    return f"legacy:{alert_type}:{region}:{day}:{digest}"


EXPECTED_FINGERPRINTS = {
    1: "HIGH_IMPACT_EVENT:501",
    3: "HIGH_IMPACT_EVENT:502",
    4: "REGIONAL_RISK_SPIKE:Europe:2026-10-06",
    7: "REGIONAL_RISK_SPIKE:Asia:2026-10-06",
    8: "ASSET_RISK_SPIKE:Europe:oil:2026-10-06",
    10: "ASSET_RISK_SPIKE:Europe:gas:2026-10-06",
    11: "REGIONAL_RISK_SPIKE:Middle East:2026-10-07",  # the risk row's day, not created_at's
    13: "REGIONAL_RISK_SPIKE:Europe:2026-10-08",
    14: legacy_fallback("HIGH_IMPACT_EVENT", "Europe", "2026-10-09", [], "Refinery fire at Rotterdam"),
    16: legacy_fallback("HIGH_IMPACT_EVENT", "Europe", "2026-10-09", [], "Pipeline outage in Norway"),
    17: legacy_fallback("ASSET_RISK_SPIKE", "Europe", "2026-10-09", ["oil", "gas"], "Oil and gas risk spike in Europe"),
    18: legacy_fallback("MARKET_NOTE", "global", "2026-10-10", [], "Weekly market note"),
    19: legacy_fallback("MARKET_NOTE", "global", "2026-10-17", [], "Weekly market note"),
    20: "HIGH_IMPACT_EVENT:503",
}


def merged_log(url: str, table: str) -> dict[int, tuple[int, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT row_id, merged_into_id, detail FROM alerts_legacy_upgrade_log "
                            "WHERE kind = 'merged_row' AND table_name = %s", [table]).fetchall()
    return {row_id: (into, detail) for row_id, into, detail in rows}


def assert_host_tables_untouched(before: Rows, after: Rows) -> None:
    for table in HOST_TABLES:
        assert after[table] == before[table], table


def assert_events_upgraded(before: Rows, after: Rows, url: str) -> None:
    old, new = by_id(before["alert_events"]), by_id(after["alert_events"])
    assert set(new) == set(old) - set(EVENT_MERGES), "only the copies are gone"
    log = merged_log(url, "alert_events")
    assert {row_id: into for row_id, (into, _) in log.items()} == EVENT_MERGES
    for event_id, legacy in old.items():
        if event_id in EVENT_MERGES:
            kept_row = log[event_id][1]
            assert kept_row["cooldown_key"] == legacy["cooldown_key"] and kept_row["headline"] == legacy["headline"]
            assert new[EVENT_MERGES[event_id]]["event_fingerprint"] == kept_row["event_fingerprint"]
            continue
        upgraded = new[event_id]
        for column, value in legacy.items():
            assert upgraded[column] == value, (event_id, column)
    assert {event_id: row["event_fingerprint"] for event_id, row in new.items()} == EXPECTED_FINGERPRINTS
    fanned_out = {row["fanout_completed_at"] for row in new.values()}
    assert None not in fanned_out and len(fanned_out) == 1, "every old event counts as fanned out, at the upgrade"


def expected_status(legacy_status: str) -> str:
    return STATUS_MAP.get(legacy_status, "failed")


def normalized(legacy: dict[str, Any]) -> bool:
    """Whether the upgrade gives a legacy row the engine's shape: its status is mapped, or it
    was being sent. A row the host wrote whole (never attempted by a sender of the engine,
    status already the contract's) keeps sent_at and last_error as the host wrote them."""
    return legacy["status"] not in CONTRACT_STATUSES or legacy["status"] == "sending"


def assert_deliveries_upgraded(before: Rows, after: Rows, url: str) -> None:
    old, new = by_id(before["user_alert_deliveries"]), by_id(after["user_alert_deliveries"])
    assert set(new) == set(old) - set(DELIVERY_MERGES), "only the duplicates are gone"
    log = merged_log(url, "user_alert_deliveries")
    assert {row_id: into for row_id, (into, _) in log.items()} == DELIVERY_MERGES
    for delivery_id, legacy in old.items():
        if delivery_id in DELIVERY_MERGES:
            kept = new[DELIVERY_MERGES[delivery_id]]
            assert log[delivery_id][1]["user_id"] == legacy["user_id"] == kept["user_id"]
            if legacy["status"] in ("sent", "delivered"):
                assert kept["status"] == "sent", f"a sent copy ({delivery_id}) was merged into an unsent row"
            continue
        row = new[delivery_id]
        event_id = legacy["alert_event_id"]
        assert row["alert_event_id"] == EVENT_MERGES.get(event_id, event_id), delivery_id
        assert row["status"] == expected_status(legacy["status"]), delivery_id
        for column in ("user_id", "channel", "provider_message_id", "opened_at"):
            assert row[column] == legacy[column], (delivery_id, column)
        assert row["created_at"] == legacy["created_at"], "the host's timestamp type and value are kept"
        if not normalized(legacy):
            assert (row["sent_at"], row["last_error"]) == (legacy["sent_at"], None), "written whole by the host: kept"
        elif row["status"] == "sent":
            assert row["sent_at"] == (legacy["sent_at"] or legacy["created_at"]), delivery_id
        else:
            assert row["sent_at"] is None
            if legacy["sent_at"] is not None:
                assert f"legacy sent_at: {legacy['sent_at']:%Y-%m-%d %H:%M:%S} UTC" in row["last_error"]
        if legacy["status"] not in STATUS_MAP:
            assert row["last_error"] == f"legacy status: {legacy['status']}"
        assert row["delivery_kind"] == "instant" and row["next_retry_at"] is None
        assert row["attempts"] == (1 if row["status"] == "sending" else 0)
    keys = [(r["alert_event_id"], r["user_id"], r["channel"], r["delivery_kind"]) for r in new.values()]
    assert len(keys) == len(set(keys)), "no duplicate delivery is left"
    assert {r["alert_event_id"] for r in new.values()} <= set(by_id(after["alert_events"]))


def assert_no_column_lost(url: str, before_columns: dict[str, set[str]]) -> None:
    with psycopg.connect(url) as conn:
        for table, columns in before_columns.items():
            now = {row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s", [table]).fetchall()}
            assert columns <= now, (table, columns - now)


def assert_upgraded(before: Rows, after: Rows, url: str) -> None:
    assert_host_tables_untouched(before, after)
    assert_events_upgraded(before, after, url)
    assert_deliveries_upgraded(before, after, url)
    assert_no_column_lost(url, {table: set(before[table][0]) for table in LEGACY_TABLES if before[table]})


def without_columns(rows: Rows, columns: set[str]) -> Rows:
    return {table: [{k: v for k, v in row.items() if k not in columns} for row in table_rows]
            for table, table_rows in rows.items()}


@pytest.fixture
def legacy_url(empty_db_url: str) -> str:
    load_legacy(empty_db_url)
    return empty_db_url


def test_runner_upgrades_the_legacy_database_in_place(legacy_url):
    before = snapshot_rows(legacy_url, LEGACY_TABLES)
    run = run_runner(legacy_url, "--migrate")
    assert run.returncode == 0, run.stderr
    assert_upgraded(before, snapshot_rows(legacy_url, LEGACY_TABLES), legacy_url)


def test_sqitch_upgrades_the_legacy_database_in_place(legacy_url):
    before = snapshot_rows(legacy_url, LEGACY_TABLES)
    sqitch(legacy_url, "deploy", "--verify")
    assert_upgraded(before, snapshot_rows(legacy_url, LEGACY_TABLES), legacy_url)


def test_the_upgrade_rewrites_no_table_and_keeps_the_legacy_indexes(legacy_url):
    files = relfilenodes(legacy_url)
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
        assert relfilenodes(legacy_url) == files, "ADD COLUMN and SET NOT NULL rewrote nothing (no type changes)"
        legacy_indexes = conn.execute(
            "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN "
            "('alert_events_created_at_idx', 'user_alert_deliveries_status_created_idx', "
            "'user_alert_deliveries_user_event_channel_uidx') ORDER BY 1").fetchall()
    assert [(name, valid) for name, valid, _ in legacy_indexes] == [
        ("alert_events_created_at_idx", True), ("user_alert_deliveries_status_created_idx", True),
        ("user_alert_deliveries_user_event_channel_uidx", True)]


def test_a_second_deploy_changes_nothing(legacy_url):
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
    schema, rows = schema_of(legacy_url), snapshot_rows(legacy_url)
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
    assert schema_of(legacy_url) == schema
    assert snapshot_rows(legacy_url) == rows
    sqitch(legacy_url, "deploy", "--verify")
    assert schema_of(legacy_url) == schema
    assert snapshot_rows(legacy_url) == rows


def test_sqitch_round_trip_keeps_the_legacy_data(legacy_url):
    before = snapshot_rows(legacy_url, LEGACY_TABLES)
    sqitch(legacy_url, "deploy", "--verify")
    sqitch(legacy_url, "verify")
    schema = schema_of(legacy_url)
    upgraded = snapshot_rows(legacy_url, (*LEGACY_TABLES, "alerts_legacy_upgrade_log"))

    sqitch(legacy_url, "revert", "-y")
    with psycopg.connect(legacy_url) as conn:
        functions = conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
        assert functions.fetchone() == (0,)
        engine_only = conn.execute("SELECT to_regclass('alerts_config'), to_regclass('alerts_runs')").fetchone()
        assert engine_only == (None, None)
    kept = snapshot_rows(legacy_url, (*LEGACY_TABLES, "alerts_legacy_upgrade_log"))
    # Only the columns of later changes (digest_id, claim_token, alert_events' spike fields and cursor: v2's own,
    # added after the upgrade) go with them.
    expected = without_columns(upgraded, {"digest_id", "claim_token"})
    spike_and_cursor = {"risk_score", "fired_on_rise", "fanout_user_cursor"}
    expected["alert_events"] = without_columns({"t": expected["alert_events"]}, spike_and_cursor)["t"]
    assert expected == kept, "revert keeps the adopted tables, their rows, the log"
    assert_upgraded(before, kept, legacy_url)

    sqitch(legacy_url, "deploy", "--verify")
    assert schema_of(legacy_url) == schema
    assert snapshot_rows(legacy_url, (*LEGACY_TABLES, "alerts_legacy_upgrade_log")) == upgraded


def test_the_pipeline_runs_on_the_upgraded_database(legacy_url):
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
        # The v1 application's own statement still finds its conflict target.
        conn.execute("INSERT INTO user_alert_deliveries (user_id, alert_event_id, channel) VALUES (1, 1, 'email') "
                     "ON CONFLICT (user_id, alert_event_id, channel) DO NOTHING")
        conn.execute("INSERT INTO user_alert_deliveries (user_id, alert_event_id, channel) VALUES (40, 1, 'email') "
                     "ON CONFLICT (user_id, alert_event_id, channel) DO NOTHING")
        # A source event that v1 already alerted on comes back into Phase A's window: the
        # backfilled fingerprint makes Phase A skip it. A new one becomes a new alert.
        conn.execute("UPDATE events SET inserted_at = now() WHERE id = 501")
        conn.execute("INSERT INTO events (id, title, region, category, severity_score) "
                     "VALUES (600, 'Export terminal shut', 'Europe', 'infrastructure', 5)")
        phase_a = conn.execute("SELECT alerts_phase_a()").fetchone()[0]
        assert (phase_a["created"], phase_a["skipped_existing"]) == (1, 1)
        phase_b = conn.execute("SELECT alerts_phase_b()").fetchone()[0]
        assert phase_b["events_fanned_out"] == 1 and phase_b["deliveries_created"] > 0
        new_event = conn.execute("SELECT id FROM alert_events WHERE event_fingerprint = 'HIGH_IMPACT_EVENT:600'")
        new_event_id = new_event.fetchone()[0]
        fanned = conn.execute("SELECT DISTINCT alert_event_id FROM user_alert_deliveries "
                              "WHERE created_at > now() - interval '1 minute' AND user_id <> 40").fetchall()
        assert fanned == [(new_event_id,)], "no old event was fanned out again"

        # v1's rows stuck in 'sending' came with an ended lease: reclaimed, retried after a backoff.
        reclaimed = conn.execute("SELECT reclaim_expired_deliveries()").fetchone()[0]
        assert reclaimed == {"requeued": 2, "failed": 0, "more": False}
        stuck = conn.execute("SELECT id, status, attempts, next_retry_at > now() FROM user_alert_deliveries "
                             "WHERE id IN (10, 30) ORDER BY id").fetchall()
        assert stuck == [(10, "queued", 1, True), (30, "queued", 1, True)]
        due = conn.execute("SELECT count_due_deliveries(NULL)").fetchone()[0]
        claimed = conn.execute("SELECT delivery_id, alert_event_id, claim_token FROM claim_deliveries(1000)").fetchall()
        assert len(claimed) == due > 0
        assert new_event_id in {event_id for _, event_id, _ in claimed}
        assert {8, 21} <= {delivery_id for delivery_id, _, _ in claimed}, "v1's queue is sent"
        ids, tokens = [row[0] for row in claimed], [row[2] for row in claimed]
        sent = conn.execute("SELECT mark_deliveries_sent(%s::bigint[], %s::bigint[])", [ids, tokens]).fetchone()[0]
        assert sent == len(ids)
        assert conn.execute("SELECT count_due_deliveries(NULL)").fetchone() == (0,)


def hold_lock(url: str, held: threading.Event, release: threading.Event) -> None:
    """An application transaction that reads user_alert_deliveries and stays open."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT count(*) FROM user_alert_deliveries")
        held.set()
        release.wait(60)
        conn.rollback()


def test_a_long_transaction_makes_the_upgrade_fail_fast_and_a_rerun_completes(legacy_url, monkeypatch):
    monkeypatch.setenv("ALERTS_MIGRATE_ATTEMPTS", "3")
    before = snapshot_rows(legacy_url, LEGACY_TABLES)
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_lock, args=(legacy_url, held, release))
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with psycopg.connect(legacy_url, autocommit=True) as conn, pytest.raises(AlertsError) as failure:
            migrate.deploy(conn)
        assert time.monotonic() - started < 30
        assert "lock timeout" in str(failure.value)
        assert "tried 3 times" in str(failure.value)
    finally:
        release.set()
        holder.join()
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
    assert_upgraded(before, snapshot_rows(legacy_url, LEGACY_TABLES), legacy_url)


def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(legacy_url):
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
        reference = schema_of(legacy_url)
        # A build of the unique key that failed half-way (here: on a duplicate) leaves an INVALID index.
        conn.execute("ALTER TABLE alert_events DROP CONSTRAINT alert_events_event_fingerprint_key")
        conn.execute("INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint) "
                     "VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'copy', 'HIGH_IMPACT_EVENT:501')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY alert_events_event_fingerprint_key "
                         "ON alert_events (event_fingerprint)")
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'alert_events_event_fingerprint_key'::regclass"
        assert conn.execute(valid).fetchone() == (False,)
        forget_deployed_from(conn, "legacy_merge_duplicates")  # as a deploy interrupted there leaves it
        migrate.deploy(conn)  # the duplicate is merged, the INVALID index dropped and built again
        assert conn.execute(valid).fetchone() == (True,)
    assert schema_of(legacy_url) == reference


@pytest.mark.parametrize("table", ["alert_events", "user_alert_deliveries"])
def test_an_index_an_earlier_upgrade_deferred_is_built_again_and_an_invalid_one_replaced(legacy_url, table):
    """An earlier version of the upgrade dropped a legacy index to retype a column, logged it as
    'deferred_index' and was interrupted: the next deploy builds it, CONCURRENTLY, replacing an
    INVALID index a failed rebuild left under its name."""
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        migrate.deploy(conn)
        definition = f"CREATE INDEX legacy_created_idx ON public.{table} USING btree (created_at)"
        conn.execute("INSERT INTO alerts_legacy_upgrade_log (kind, table_name, detail) VALUES "
                     "('deferred_index', %s, jsonb_build_object('name', 'legacy_created_idx', 'definition', %s::text))",
                     [table, definition])
        with pytest.raises(psycopg.errors.UniqueViolation):  # a rebuild that failed half-way
            conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY legacy_created_idx ON {table} (channel)"
                         if table == "user_alert_deliveries" else
                         f"CREATE UNIQUE INDEX CONCURRENTLY legacy_created_idx ON {table} (scope_region)")
        forget_deployed_from(conn, "legacy_upgrade_events")  # as a deploy interrupted there leaves it
        migrate.deploy(conn)
        built = conn.execute("SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                             "WHERE i.indexrelid = 'legacy_created_idx'::regclass").fetchone()
    assert built == (True, definition)


def test_duplicates_within_one_event_are_merged_where_the_old_unique_index_is_missing(legacy_url):
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        conn.execute("DROP INDEX user_alert_deliveries_user_event_channel_uidx")
        conn.execute("""
            INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, status, sent_at, created_at) VALUES
                (1001, 3, 30, 'email', 'queued', NULL, '2026-10-05 11:00:01'),
                (1002, 3, 30, 'email', 'sent', '2026-10-05 11:05:00', '2026-10-05 11:00:02'),
                (1003, 3, 30, 'email', 'pending', NULL, '2026-10-05 11:00:03'),
                (1004, 3, 31, 'email', 'delivered', '2026-10-05 11:00:30', '2026-10-05 11:00:01'),
                (1005, 3, 31, 'email', 'sent', '2026-10-05 11:00:20', '2026-10-05 11:00:02')""")
        migrate.deploy(conn)
        kept = conn.execute("SELECT id, status FROM user_alert_deliveries WHERE id > 1000 ORDER BY id").fetchall()
        assert kept == [(1002, "sent"), (1004, "sent")]
        merged = conn.execute("SELECT row_id, merged_into_id FROM alerts_legacy_upgrade_log "
                              "WHERE kind = 'merged_row' AND row_id > 1000 ORDER BY row_id").fetchall()
        assert merged == [(1001, 1002), (1003, 1002), (1005, 1004)]
        # The old index was not there: the upgrade does not invent it.
        assert conn.execute("SELECT to_regclass('user_alert_deliveries_user_event_channel_uidx')").fetchone() == (None,)


def test_backfills_walk_every_batch_of_a_larger_table(legacy_url):
    """More rows than one 5,000-row batch: every event gets its fingerprint, every delivery its mapping."""
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO alert_events (id, alert_type, scope_region, severity, headline, driver_event_ids,
                                      cooldown_key, created_at)
            SELECT 1000 + n, 'HIGH_IMPACT_EVENT', 'Europe', 4, 'Event ' || n, ARRAY[100000 + n],
                   'bulk:' || n, timestamp '2026-10-20 00:00:00' + n * interval '1 second'
              FROM generate_series(1, 12000) AS n""")
        conn.execute("""
            INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, status, created_at)
            SELECT 100000 + n, 1000 + n, 1, 'email', (ARRAY['delivered', 'pending', 'bounced'])[n % 3 + 1],
                   timestamp '2026-10-20 00:00:01' + n * interval '1 second'
              FROM generate_series(1, 12000) AS n""")
        migrate.deploy(conn)
        events = conn.execute("SELECT count(*), count(DISTINCT event_fingerprint) FROM alert_events "
                              "WHERE id > 1000 AND event_fingerprint = 'HIGH_IMPACT_EVENT:' || (id - 1000 + 100000)")
        assert events.fetchone() == (12000, 12000)
        statuses = conn.execute("SELECT status, count(*), count(sent_at), count(last_error) FROM user_alert_deliveries "
                                "WHERE id > 100000 GROUP BY status ORDER BY status").fetchall()
        assert statuses == [("failed", 4000, 0, 4000), ("queued", 4000, 0, 0), ("sent", 4000, 4000, 0)]


def test_overlapping_runner_migrations_wait_for_each_other(legacy_url):
    """Three deploys at once: they take turns (the migrate lock is polled, so a waiting deploy
    holds no snapshot that another one's CREATE INDEX CONCURRENTLY would wait for)."""
    before = snapshot_rows(legacy_url, LEGACY_TABLES)
    outcomes: list[str] = []

    def deploy_once() -> None:
        try:
            with psycopg.connect(legacy_url, autocommit=True) as conn:
                outcomes.append(migrate.deploy(conn)["migrate"])
        except Exception as error:  # reported through the assertion below
            outcomes.append(repr(error))

    threads = [threading.Thread(target=deploy_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == ["ok", "ok", "ok"]
    assert_upgraded(before, snapshot_rows(legacy_url, LEGACY_TABLES), legacy_url)
