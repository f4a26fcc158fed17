"""Phase B: one delivery per key, the fanout marker in the same transaction, overlapping runs."""

from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests import seed


def _call(url: str, function: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT {function}()").fetchone()
        assert row is not None
        return row[0]


def test_second_run_creates_no_duplicates_and_marks_every_event(conn, db_url):
    seed.population(conn, users=20, events=3, channels=("email", "telegram"))
    _call(db_url, "alerts_phase_a")
    first = _call(db_url, "alerts_phase_b")
    second = _call(db_url, "alerts_phase_b")
    assert first["deliveries_created"] == 20 * 3 * 2
    assert first["events_fanned_out"] == 3
    assert second["deliveries_created"] == 0 and second["events_fanned_out"] == 0
    dupes = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM user_alert_deliveries "
        "GROUP BY alert_event_id, user_id, channel HAVING count(*) > 1) d").fetchone()
    assert dupes == (0,)
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone() == (0,)


def test_event_without_eligible_user_is_still_marked(conn, db_url):
    seed.plan(conn, "pro")
    seed.event(conn, severity=5)
    _call(db_url, "alerts_phase_a")
    counts = _call(db_url, "alerts_phase_b")
    assert counts["events_fanned_out"] == 1 and counts["deliveries_created"] == 0
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone() == (0,)


def test_rerun_after_marker_cleared_relies_on_unique_key(conn, db_url):
    """Clearing the marker re-fans the events; the UNIQUE key alone must stop duplicates."""
    seed.population(conn, users=5, events=2)
    _call(db_url, "alerts_phase_a")
    _call(db_url, "alerts_phase_b")
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL")
    again = _call(db_url, "alerts_phase_b")
    assert again["deliveries_created"] == 0 and again["deliveries_existing"] == 10
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (10,)


def test_overlapping_runs_fan_out_once(conn, db_url):
    seed.population(conn, users=50, events=0)
    for round_number in range(4):
        seed.event(conn, title=f"Round {round_number}", severity=5)
        _call(db_url, "alerts_phase_a")
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(_call, [db_url] * 6, ["alerts_phase_b"] * 6))
        assert sum(r.get("deliveries_created", 0) for r in results) == 50
    assert conn.execute("SELECT count(*), count(DISTINCT (alert_event_id, user_id, channel)) "
                        "FROM user_alert_deliveries").fetchone() == (200, 200)


def test_fanout_marker_and_deliveries_commit_together(conn, db_url):
    """A Phase B that fails mid-way (here: a DBA rolls it back) leaves events un-fanned and no rows."""
    seed.population(conn, users=5, events=1)
    _call(db_url, "alerts_phase_a")
    conn.execute("BEGIN")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone() == (1,)
    assert _call(db_url, "alerts_phase_b")["deliveries_created"] == 5
