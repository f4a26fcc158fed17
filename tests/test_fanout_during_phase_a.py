"""Phase B while Phase A commits: an event created after Phase B's transaction began, but before
its fanout statement took its snapshot, is fanned out without breaking
alert_events_fanout_after_creation (fanout_completed_at >= created_at).

The window is opened for real: Phase B refreshes stale statistics first, and a session holding
SHARE UPDATE EXCLUSIVE on user_alert_deliveries makes that ANALYZE wait while Phase A commits."""

import threading
import time

import psycopg

from tests import seed

ROUNDS = 3


def _wait_until_blocked(conn: psycopg.Connection, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.05)
    raise AssertionError("Phase B never waited for the ANALYZE lock")


def _make_deliveries_stale(conn: psycopg.Connection, history_event: int, round_no: int) -> None:
    """Enough new rows that alerts_analyze_if_stale() ANALYZEs user_alert_deliveries."""
    conn.execute(
        "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, sent_at) "
        "SELECT %s, 1000000 * %s + g, 'email', 'sent', 1, now() FROM generate_series(1, 500) g",
        [history_event, round_no])
    conn.execute("SELECT pg_stat_force_next_flush()")


def test_phase_b_fans_out_an_event_phase_a_committed_during_its_transaction(conn, db_url):
    seed.plan(conn, "pro")
    user = seed.user(conn, email="spike@example.com")
    seed.pref(conn, user, "HIGH_IMPACT_EVENT")
    (history_event,) = conn.execute(
        "INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint, "
        "fanout_completed_at) VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'old', 'history', now()) RETURNING id"
    ).fetchone()
    conn.execute("ANALYZE user_alert_deliveries")

    for round_no in range(1, ROUNDS + 1):
        _make_deliveries_stale(conn, history_event, round_no)
        outcome: dict[str, object] = {}
        with psycopg.connect(db_url) as blocker, psycopg.connect(db_url, autocommit=True) as phase_b:
            blocker.execute("LOCK TABLE user_alert_deliveries IN SHARE UPDATE EXCLUSIVE MODE")
            phase_b_pid = phase_b.info.backend_pid

            def run_phase_b(phase_b: psycopg.Connection = phase_b, outcome: dict[str, object] = outcome) -> None:
                try:
                    outcome["counts"] = phase_b.execute("SELECT alerts_phase_b()").fetchone()[0]
                except psycopg.Error as error:
                    outcome["error"] = f"{type(error).__name__}: {error.diag.message_primary}"

            worker = threading.Thread(target=run_phase_b)
            worker.start()
            _wait_until_blocked(conn, phase_b_pid)
            # Phase A commits a new event while Phase B's transaction is open and waiting.
            conn.execute("INSERT INTO events (title, region, severity_score) VALUES (%s, 'Europe', 5)",
                         [f"blast {round_no}"])
            assert conn.execute("SELECT alerts_phase_a()->'created'").fetchone() == (1,)
            blocker.rollback()
            worker.join(timeout=60)
        assert not worker.is_alive()
        assert "error" not in outcome, outcome["error"]
        counts = outcome["counts"]
        assert isinstance(counts, dict) and counts["events_fanned_out"] == 1, counts
        assert counts["deliveries_created"] == 1, counts
        assert conn.execute(
            "SELECT count(*) FROM alert_events WHERE fanout_completed_at IS NULL OR fanout_completed_at < created_at"
        ).fetchone() == (0,)
