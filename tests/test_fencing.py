"""Fenced outcomes: every claim hands out a claim_token, and an outcome changes a row only while the
row still carries the token of the claim it belongs to. A sender whose lease ended, whose rows were
reclaimed and claimed again by another sender, can no longer overwrite the newer claim."""

import psycopg
import pytest

from alerts.delivery import DELIVERIES, DIGESTS, BatchOutcomes, Database, DeliveryCounts, record
from tests import seed

OUTCOME_CALLS = {
    "release": "SELECT release_deliveries(%s, %s)",
    "failed": "SELECT mark_deliveries_failed(%s, %s, ARRAY['550 late'])",
    "requeue": "SELECT requeue_deliveries(%s, %s, ARRAY['timeout late'])",
    "skipped": "SELECT mark_deliveries_skipped(%s, %s, ARRAY['late'])",
    "sent": "SELECT mark_deliveries_sent(%s, %s, ARRAY['late-1'])",
}


def _one_queued_delivery(conn: psycopg.Connection) -> None:
    seed.plan(conn, "pro", delivery_config={"telegram": {"enabled": False}})
    user = seed.user(conn, email="fenced@example.com")
    seed.pref(conn, user)
    seed.event(conn)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (1,)


def _expire_reclaim_and_make_due(conn: psycopg.Connection, table: str = "user_alert_deliveries") -> None:
    conn.execute(f"UPDATE {table} SET lease_expires_at = now() - interval '1 second' WHERE status = 'sending'")
    reclaim = "reclaim_expired_deliveries" if table == "user_alert_deliveries" else "reclaim_expired_digests"
    conn.execute(f"SELECT {reclaim}()")
    conn.execute(f"UPDATE {table} SET next_retry_at = now() - interval '1 second' WHERE status = 'queued'")


def _claim(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute("SELECT delivery_id, claim_token FROM claim_deliveries(10)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("late_outcome", sorted(OUTCOME_CALLS))
def test_a_late_outcome_of_an_expired_claim_changes_nothing(conn, late_outcome):
    _one_queued_delivery(conn)
    first_id, first_token = _claim(conn)                       # worker 1, attempt 1
    _expire_reclaim_and_make_due(conn)
    second_id, second_token = _claim(conn)                     # worker 2, attempt 2
    assert first_id == second_id and first_token != second_token
    changed = conn.execute(OUTCOME_CALLS[late_outcome], [[first_id], [first_token]]).fetchone()[0]
    assert changed == 0, f"worker 1's late {late_outcome} overwrote worker 2's claim"
    assert conn.execute("SELECT status, attempts, claim_token FROM user_alert_deliveries").fetchone() == (
        "sending", 2, second_token)
    assert conn.execute("SELECT mark_deliveries_sent(%s, %s, ARRAY['msg-2'])",
                        [[second_id], [second_token]]).fetchone() == (1,)
    assert conn.execute("SELECT status, provider_message_id FROM user_alert_deliveries").fetchone() == (
        "sent", "msg-2")


def test_a_sent_outcome_after_the_lease_ended_changes_nothing_once_the_row_is_back_in_the_queue(conn):
    """Only sending -> sent: a row put back after its lease ended is no longer the caller's. Its message
    may go out again (at least once), but no caller turns a queued row it does not hold into sent."""
    _one_queued_delivery(conn)
    delivery_id, token = _claim(conn)
    _expire_reclaim_and_make_due(conn)
    assert conn.execute("SELECT status FROM user_alert_deliveries").fetchone() == ("queued",)
    assert conn.execute("SELECT mark_deliveries_sent(%s, %s, ARRAY['msg-1'])",
                        [[delivery_id], [token]]).fetchone() == (0,)
    assert conn.execute("SELECT status, provider_message_id FROM user_alert_deliveries").fetchone() == (
        "queued", None)
    assert conn.execute("SELECT count_due_deliveries()").fetchone() == (1,)


def test_an_outcome_without_one_token_per_id_is_refused_in_one_line(conn):
    _one_queued_delivery(conn)
    delivery_id, _ = _claim(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="one claim_token per id"):
        conn.execute("SELECT release_deliveries(%s, NULL)", [[delivery_id]])
    assert conn.execute("SELECT to_regprocedure('release_deliveries(bigint[])')").fetchone() == (None,), \
        "the unfenced signature is gone"


def test_the_runner_counts_stale_outcomes_instead_of_recording_them(conn, db_url):
    _one_queued_delivery(conn)
    delivery_id, first_token = _claim(conn)
    _expire_reclaim_and_make_due(conn)
    _, second_token = _claim(conn)
    counts = DeliveryCounts()
    outcomes = BatchOutcomes(sent=[(delivery_id, first_token, "late-1")])
    record(Database(db_url, conn), DELIVERIES, outcomes, counts)
    assert (counts.sent, counts.stale_outcomes, counts.stale_sent) == (0, 1, 1)
    assert conn.execute("SELECT status, claim_token FROM user_alert_deliveries").fetchone() == (
        "sending", second_token)


def _one_digest(conn: psycopg.Connection) -> None:
    seed.plan(conn, "personal", delivery_config={"email": {"enabled": True, "digest": True},
                                                  "telegram": {"enabled": False}})
    user = seed.user(conn, plan_code="personal", email="digest@example.com")
    seed.pref(conn, user)
    seed.event(conn, title="Event 1")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day'")
    conn.execute("SELECT alerts_phase_d()")


@pytest.mark.parametrize("late_outcome", ["release", "requeue", "failed", "skipped", "sent"])
def test_a_late_digest_outcome_of_an_expired_claim_changes_nothing(conn, db_url, late_outcome):
    _one_digest(conn)
    first = conn.execute("SELECT digest_id, claim_token FROM claim_digests(5)").fetchone()
    _expire_reclaim_and_make_due(conn, "alert_digests")
    second = conn.execute("SELECT digest_id, claim_token FROM claim_digests(5)").fetchone()
    assert first[0] == second[0] and first[1] != second[1]
    details = [] if late_outcome == "release" else [["late"]]
    placeholders = ", %s" * (2 + len(details))
    changed = conn.execute(f"SELECT record_digest_outcomes(%s{placeholders})",
                           [late_outcome, [first[0]], [first[1]], *details]).fetchone()[0]
    assert changed == 0
    assert conn.execute("SELECT status, claim_token FROM alert_digests").fetchone() == ("sending", second[1])
    counts = DeliveryCounts()
    record(Database(db_url, conn), DIGESTS, BatchOutcomes(sent=[(second[0], second[1], "msg-2")]), counts)
    assert (counts.sent, counts.digests_sent, counts.stale_outcomes) == (1, 1, 0)
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [("sent", 1)]
