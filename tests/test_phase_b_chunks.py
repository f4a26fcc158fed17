"""Phase B in chunks (alerts_phase_b(max_events), for watch mode): the oldest events first, each
chunk whole (its deliveries and its fanout marker together), and no chunk repeats another."""

import psycopg
import pytest

from tests import seed


def _fan_out(conn: psycopg.Connection, max_events: int | None) -> dict:
    row = conn.execute("SELECT alerts_phase_b(%s::integer)", [max_events]).fetchone()
    assert row is not None
    return row[0]


def test_chunks_take_the_oldest_events_first_until_none_is_left(conn):
    seed.population(conn, users=7, events=0)
    for n in range(5):
        seed.event(conn, title=f"Event {n}", age=f"{10 - n} minutes")
    conn.execute("SELECT alerts_phase_a()")
    order = [r[0] for r in conn.execute("SELECT id FROM alert_events ORDER BY created_at, id")]
    chunks = []
    while True:
        counts = _fan_out(conn, 2)
        if counts["events_fanned_out"] == 0:
            break
        chunks.append({r[0] for r in conn.execute(
            "SELECT DISTINCT alert_event_id FROM user_alert_deliveries WHERE alert_event_id <> ALL(%s)",
            [[e for chunk in chunks for e in chunk]])})
        assert counts["deliveries_created"] == 7 * counts["events_fanned_out"]
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert [sorted(chunk) for chunk in chunks] == [sorted(order[0:2]), sorted(order[2:4]), [order[4]]]
    assert conn.execute("SELECT count(*), count(DISTINCT (alert_event_id, user_id)) FROM user_alert_deliveries"
                        ).fetchone() == (35, 35)
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone() == (0,)


def test_no_limit_fans_out_everything_and_a_bad_limit_is_refused(conn):
    seed.population(conn, users=3, events=4)
    conn.execute("SELECT alerts_phase_a()")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="max_events must be at least 1"):
        _fan_out(conn, 0)
    assert _fan_out(conn, None)["events_fanned_out"] == 4
