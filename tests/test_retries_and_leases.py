"""Retries with backoff, max attempts, leases and the reclaim of rows stuck in 'sending'."""

import threading
from datetime import timedelta

import psycopg

from tests import seed


def _queue(conn: psycopg.Connection, users: int = 3) -> None:
    seed.population(conn, users=users, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")


def _claim(conn: psycopg.Connection, n: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT delivery_id FROM claim_deliveries(%s)", [n]).fetchall()]


def _tokens(conn: psycopg.Connection, ids: list[int]) -> list[int]:
    """The claim tokens the rows carry now, in the order of ids."""
    return [conn.execute("SELECT claim_token FROM user_alert_deliveries WHERE id = %s", [i]).fetchone()[0]
            for i in ids]


def test_transient_failure_waits_with_exponential_backoff_and_jitter(conn):
    _queue(conn, users=1)
    conn.execute("UPDATE alerts_config SET retry_base = '60 seconds', retry_max = '1 hour', retry_jitter_pct = 20")
    expected_base = [60, 120, 240]
    for attempt, base in enumerate(expected_base, start=1):
        ids = _claim(conn, 1)
        assert len(ids) == 1, f"attempt {attempt} found nothing due"
        conn.execute("SELECT requeue_deliveries(%s, %s, %s)", [ids, _tokens(conn, ids), ["timeout"]])
        wait = conn.execute("SELECT extract(epoch FROM next_retry_at - now()) FROM user_alert_deliveries").fetchone()
        assert wait is not None and base <= wait[0] <= base * 1.2 + 1, (attempt, wait)
        assert _claim(conn, 1) == [], "a row waiting for its retry was claimed early"
        conn.execute("UPDATE user_alert_deliveries SET next_retry_at = now() - interval '1 second'")
    assert conn.execute("SELECT status, attempts, last_error FROM user_alert_deliveries").fetchone() == (
        "queued", 3, "timeout")


def test_backoff_is_capped(conn):
    conn.execute("UPDATE alerts_config SET retry_base = '60 seconds', retry_max = '5 minutes', retry_jitter_pct = 0")
    delays = [conn.execute("SELECT alerts_retry_delay(%s)", [n]).fetchone()[0] for n in (1, 2, 3, 4, 10, 1000)]
    assert delays == [timedelta(seconds=s) for s in (60, 120, 240, 300, 300, 300)]


def test_attempts_run_out_into_failed(conn):
    _queue(conn, users=1)
    conn.execute("UPDATE alerts_config SET max_attempts = 3")
    for _ in range(3):
        conn.execute("UPDATE user_alert_deliveries SET next_retry_at = NULL WHERE status = 'queued'")
        ids = _claim(conn, 1)
        conn.execute("SELECT requeue_deliveries(%s, %s, %s)", [ids, _tokens(conn, ids), ["503 from provider"]])
    row = conn.execute("SELECT status, attempts, last_error, next_retry_at FROM user_alert_deliveries").fetchone()
    assert row == ("failed", 3, "gave up after 3 attempts: 503 from provider", None)


def test_expired_lease_is_reclaimed_and_live_lease_is_not(conn):
    _queue(conn, users=4)
    conn.execute("UPDATE alerts_config SET lease_duration = '10 minutes'")
    stuck, live = _claim(conn, 2), _claim(conn, 2)
    conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = ANY(%s)",
                 [stuck])
    reclaimed = conn.execute("SELECT reclaim_expired_deliveries()").fetchone()
    assert reclaimed == ({"requeued": 2, "failed": 0, "more": False},)
    statuses = dict(conn.execute("SELECT id, status FROM user_alert_deliveries").fetchall())
    assert {statuses[i] for i in stuck} == {"queued"} and {statuses[i] for i in live} == {"sending"}


def test_reclaim_after_the_last_attempt_fails_the_row(conn):
    _queue(conn, users=1)
    conn.execute("UPDATE alerts_config SET max_attempts = 1")
    ids = _claim(conn, 1)
    conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 second'")
    reclaimed = conn.execute("SELECT reclaim_expired_deliveries()").fetchone()
    assert reclaimed == ({"requeued": 0, "failed": 1, "more": False},)
    status, error = conn.execute("SELECT status, last_error FROM user_alert_deliveries WHERE id = %s", ids).fetchone()
    assert status == "failed" and "lease expired" in error


def test_reclaim_never_overwrites_a_row_completed_meanwhile(conn, db_url):
    """The sender marks the row sent while reclaim runs: reclaim passes over the row the sender holds
    (SKIP LOCKED: senders reclaiming side by side never wait for each other) and the row stays sent."""
    _queue(conn, users=1)
    ids = _claim(conn, 1)
    conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 second'")
    with psycopg.connect(db_url) as sender:
        sender.execute("SELECT mark_deliveries_sent(%s, %s, %s)",  # row locked, not committed
                       [ids, _tokens(conn, ids), ["provider-1"]])
        result: list = []
        reclaimer = threading.Thread(target=lambda: result.append(
            psycopg.connect(db_url, autocommit=True).execute("SELECT reclaim_expired_deliveries()").fetchone()))
        reclaimer.start()
        reclaimer.join(5.0)
        assert not reclaimer.is_alive(), "reclaim waited for the sender's row lock"
        sender.commit()
    assert result == [({"requeued": 0, "failed": 0, "more": False},)]
    assert conn.execute("SELECT status, provider_message_id FROM user_alert_deliveries").fetchone() == (
        "sent", "provider-1")


def test_claim_counts_the_attempt_even_if_the_sender_never_reports(conn):
    _queue(conn, users=1)
    conn.execute("UPDATE alerts_config SET max_attempts = 2")
    for _ in range(2):  # two claims whose senders "crash": only the lease brings the row back
        _claim(conn, 1)
        conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 second'")
        conn.execute("SELECT reclaim_expired_deliveries()")
        conn.execute("UPDATE user_alert_deliveries SET next_retry_at = NULL WHERE status = 'queued'")
    assert conn.execute("SELECT status, attempts FROM user_alert_deliveries").fetchone() == ("failed", 2)
