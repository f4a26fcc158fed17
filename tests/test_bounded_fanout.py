"""Phase B in bounded steps: each alerts_phase_b(max_events, max_rows) call considers at most
max_rows (event, user) pairs, moves the events' cursor on in the transaction of its deliveries,
and marks an event fanned out with its last range; the runner steps until done and halves the
budget when a DBA's statement_timeout cancels a step."""

import json
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests import seed
from tests.conftest import run_runner


def _step(conn: psycopg.Connection, max_events: int | None, max_rows: int | None) -> dict:
    row = conn.execute("SELECT alerts_phase_b(%s::integer, %s::integer)", [max_events, max_rows]).fetchone()
    assert row is not None
    return row[0]


def _duplicates(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) - count(DISTINCT (alert_event_id, user_id, channel, delivery_kind)) "
                       "FROM user_alert_deliveries").fetchone()
    assert row is not None
    return int(row[0])


def test_each_step_stays_within_its_row_budget_and_the_last_range_marks_the_events(conn):
    seed.population(conn, users=25, events=2)
    conn.execute("SELECT alerts_phase_a()")
    steps = []
    while True:
        counts = _step(conn, None, 10)  # 2 events x 5 users a step
        steps.append(counts)
        unfanned = conn.execute("SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL").fetchone()[0]
        if counts["done"]:
            assert unfanned == 0
            break
        assert unfanned == 2, "an event was marked fanned out before its last range"
        assert counts["events_in_progress"] == 2 and counts["events_fanned_out"] == 0
    assert [s["deliveries_created"] for s in steps] == [10, 10, 10, 10, 10, 0]
    assert steps[-1]["events_fanned_out"] == 2
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (50,)
    assert conn.execute("SELECT count(*) FROM alert_events WHERE fanout_user_cursor IS NOT NULL").fetchone() == (0,)
    assert _duplicates(conn) == 0


def test_the_table_refuses_a_cursor_on_a_fanned_out_event(conn):
    seed.population(conn, users=1, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    try:
        conn.execute("UPDATE alert_events SET fanout_user_cursor = 1")
    except psycopg.errors.CheckViolation as error:
        assert "alert_events_cursor_only_while_fanning_out" in str(error)
    else:
        raise AssertionError("a fanned-out event took a cursor")


def test_an_event_arriving_mid_fanout_waits_for_the_group_and_misses_no_user(conn):
    seed.population(conn, users=12, events=1)
    conn.execute("SELECT alerts_phase_a()")
    first = _step(conn, None, 5)
    assert first["events_in_progress"] == 1 and not first["done"]
    seed.event(conn, title="Second incident", severity=5)
    conn.execute("SELECT alerts_phase_a()")
    while not _step(conn, None, 5)["done"]:
        pass
    per_event = conn.execute("SELECT alert_event_id, count(*) FROM user_alert_deliveries "
                             "GROUP BY 1 ORDER BY 1").fetchall()
    assert [n for _, n in per_event] == [12, 12]
    assert _duplicates(conn) == 0


def test_overlapping_steppers_create_every_delivery_once(conn, db_url):
    seed.population(conn, users=300, events=4, channels=("email", "telegram"))
    conn.execute("SELECT alerts_phase_a()")

    def stepper(_: int) -> int:
        with psycopg.connect(db_url, autocommit=True) as own:
            created = 0
            for _ in range(500):
                counts = _step(own, None, 97)
                created += int(counts.get("deliveries_created", 0))
                if counts.get("done"):
                    break
            return created

    with ThreadPoolExecutor(4) as pool:
        created = sum(pool.map(stepper, range(4)))
    while not _step(conn, None, 97)["done"]:
        pass
    assert created <= 300 * 4 * 2
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (300 * 4 * 2,)
    assert _duplicates(conn) == 0


def test_a_bad_row_budget_is_refused(conn):
    try:
        _step(conn, None, 0)
    except psycopg.errors.InvalidParameterValue as error:
        assert "max_rows must be at least 1" in str(error)
    else:
        raise AssertionError("max_rows 0 was accepted")


def test_the_runner_fans_a_backlog_out_under_a_short_statement_timeout(conn, db_url, tmp_path):
    """A database statement_timeout far below what one statement over the whole backlog takes: the
    runner halves its step until a step fits, and every delivery is created and sent exactly once."""
    users, events = 3000, 20
    seed.population(conn, users=users, events=events)
    conn.execute("VACUUM ANALYZE")
    database = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(f'ALTER DATABASE "{database}" SET statement_timeout = \'250ms\'')
    outbox = tmp_path / "outbox.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}", "ALERTS_MAX_SEND_PER_RUN": "100000"}
    results = [run_runner(db_url, "--phase", "all", env=env, timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    phase_b = json.loads(results[0].stdout.splitlines()[1])
    assert phase_b["phase"] == "b" and phase_b["done"] is True
    assert phase_b["max_rows"] < 50000, "no step was ever cancelled: the timeout did not bite"
    assert "canceled by the statement_timeout" in results[0].stderr
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert len(lines) == users * events
    assert len({line["delivery_id"] for line in lines}) == users * events, "a delivery was sent twice"
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone() == (
        users * events,)
