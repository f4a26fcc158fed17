"""Phase A: idempotent alert events, one per fingerprint, under repeated and overlapping runs."""

from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests import seed


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
