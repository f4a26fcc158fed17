"""Phase A: idempotent alert events, one per fingerprint, under repeated and overlapping runs."""

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest

from tests import seed
from tests.conftest import run_runner


def _seed_sources(conn: psycopg.Connection) -> None:
    for n in range(5):
        seed.event(conn, title=f"Event {n}", severity=4 + n % 2)
    seed.event(conn, title="Minor", severity=2)
    seed.risk_index(conn, "Europe", 40, age="30 hours")
    seed.risk_index(conn, "Europe", 75)
    seed.asset_risk(conn, "Europe", "gas", 85)


def _phase_a(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT alerts_phase_a()").fetchone()
        assert row is not None
        return row[0]


def test_second_run_creates_nothing_and_counts_existing(conn, db_url):
    _seed_sources(conn)
    first = _phase_a(db_url)
    second = _phase_a(db_url)
    assert first["created"] == 7 and first["skipped_existing"] == 0
    assert second["created"] == 0 and second["skipped_existing"] == 7
    assert conn.execute("SELECT count(*), count(DISTINCT event_fingerprint) FROM alert_events").fetchone() == (7, 7)
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NOT NULL").fetchone() == (0,)


def test_overlapping_runs_never_duplicate(conn, db_url):
    """Eight connections call Phase A at once, five rounds, new source rows between rounds."""
    for round_number in range(5):
        seed.event(conn, title=f"Round {round_number}", severity=5)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(_phase_a, [db_url] * 8))
        assert all(r["skipped"] is False or r["reason"] == "lock_not_acquired" for r in results)
        assert sum(r.get("created", 0) for r in results) == 1
    assert conn.execute("SELECT count(*), count(DISTINCT event_fingerprint) FROM alert_events").fetchone() == (5, 5)


def test_unique_fingerprint_is_what_stops_duplicates(conn, db_url):
    """With the advisory lock held by the test itself (re-entrant), only the UNIQUE key is left."""
    seed.event(conn, severity=5)
    conn.execute("BEGIN")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("COMMIT")
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (1,)


def test_bad_rows_are_counted_and_do_not_block_good_ones(conn, db_url):
    seed.event(conn, region=None, severity=5)
    seed.event(conn, severity=9)
    seed.event(conn, severity=None)
    seed.event(conn, title="It's <b>bad</b>; DROP TABLE users; --", severity=5)
    seed.risk_index(conn, "Asia", 150)
    counts = _phase_a(db_url)
    assert counts["created"] == 1
    assert counts["invalid_source_rows"] == 4
    headline = conn.execute("SELECT headline FROM alert_events").fetchone()
    assert headline == ("It's <b>bad</b>; DROP TABLE users; --",)


def _wait_until_waiting_on_a_lock(conn: psycopg.Connection, running: Future) -> None:
    """Until a Phase A call of this database waits for a lock (the other session's new row)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not running.done():
        waiting = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND query LIKE '%alerts_phase_a%'").fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.05)
    raise AssertionError("Phase A never waited for the other session's uncommitted alert")


def _many_events(conn: psycopg.Connection, count: int) -> list[int]:
    rows = conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at) "
                        "SELECT 'Bulk ' || g, 'Europe', 'supply', 5, now() - interval '1 hour' "
                        "FROM generate_series(1, %s) g RETURNING id", [count]).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.parametrize("new_events", [1, 1200])
def test_a_fingerprint_committed_meanwhile_is_skipped_not_duplicated(conn, db_url, new_events):
    """Another session writes one of the run's fingerprints and commits while the run inserts:
    the run's look-up of existing alerts cannot have seen it, so the unique key stops the
    duplicate and the run still creates every other alert."""
    ids = _many_events(conn, new_events)
    with psycopg.connect(db_url) as other:
        other.execute("INSERT INTO alert_events (alert_type, scope_region, severity, headline, body, "
                      "event_fingerprint) VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'h', 'b', %s)",
                      [f"HIGH_IMPACT_EVENT:{ids[-1]}"])
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(_phase_a, db_url)
            _wait_until_waiting_on_a_lock(conn, running)
            other.commit()
            counts = running.result(timeout=30)
    assert counts["created"] == new_events - 1 and counts["skipped_existing"] == 1
    assert conn.execute("SELECT count(*), count(DISTINCT event_fingerprint) FROM alert_events").fetchone() == (
        new_events, new_events)


def test_a_spike_seen_earlier_today_does_not_stop_a_large_run(conn, db_url):
    """The spike's fingerprint exists when 1,200 new alerts are inserted with it: the run skips
    the spike and creates them all."""
    seed.risk_index(conn, "Europe", 75)
    assert _phase_a(db_url)["created"] == 1
    _many_events(conn, 1200)
    counts = _phase_a(db_url)
    assert counts["created"] == 1200 and counts["skipped_existing"] == 1 and counts["candidates"] == 1201
    assert counts["created_by_type"] == {"HIGH_IMPACT_EVENT": 1200}


def test_a_large_backlog_of_new_events_is_turned_into_alerts_a_bounded_batch_a_call(conn, db_url):
    """At most alerts_config.source_batch new high-impact events a call, the oldest first, with
    "more": true while some wait; the runner calls it until none does."""
    conn.execute("UPDATE alerts_config SET source_batch = 3")
    for n in range(7):
        seed.event(conn, title=f"Incident {n}", severity=5)
    first = conn.execute("SELECT alerts_phase_a()").fetchone()[0]
    assert first["created"] == 3 and first["more"] is True, first
    oldest = conn.execute("SELECT array_agg(driver_event_ids[1] ORDER BY driver_event_ids[1]) "
                          "FROM alert_events").fetchone()[0]
    assert oldest == [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id LIMIT 3")]
    result = run_runner(db_url, "--phase", "a")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["created"] == 4 and counts["more"] is False, counts
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (7,)
