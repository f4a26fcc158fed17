"""One fenced UPDATE behind every delivery outcome: alerts_record_delivery_outcomes() takes one
outcome per row, unnested beside its id, claim token and detail, and changes a row only while it is
'sending' under that token. The outcome functions the runner calls are thin wrappers over it, so one
call with mixed outcomes leaves each row exactly as the wrapper of its outcome does."""

import psycopg
import pytest

from tests import seed

RECORD = "SELECT alerts_record_delivery_outcomes(%s, %s, %s, %s, %s)"
WRAPPERS = {
    "sent": "SELECT mark_deliveries_sent(%s, %s, %s)",
    "failed": "SELECT mark_deliveries_failed(%s, %s, %s)",
    "skipped": "SELECT mark_deliveries_skipped(%s, %s, %s)",
    "requeue": "SELECT requeue_deliveries(%s, %s, %s)",
    "release": "SELECT release_deliveries(%s, %s)",
}
# (outcome, detail, attempts made before the claim): the last requeue is the one that gives up
CASES = [("sent", "msg-1", 0), ("sent", None, 0), ("failed", "550 no such user", 0), ("failed", None, 0),
         ("skipped", "invalid phone number", 0), ("requeue", "timeout", 0), ("requeue", None, 0),
         ("requeue", "451 try later", 4), ("release", None, 0)]
# what each case leaves, read by STATE
EXPECTED = [
    ("sent", 1, None, "msg-1", True, True, None, None, True),
    ("sent", 1, None, None, True, True, None, None, True),
    ("failed", 1, "550 no such user", None, False, True, None, None, True),
    ("failed", 1, "failed without a reason", None, False, True, None, None, True),
    ("skipped", 1, "invalid phone number", None, False, True, None, None, True),
    ("queued", 1, "timeout", None, False, False, True, None, True),
    ("queued", 1, "transient failure", None, False, False, True, None, True),
    ("failed", 5, "gave up after 5 attempts: 451 try later", None, False, True, None, None, True),
    ("queued", 0, None, None, False, True, None, None, True),
]
STATE = """SELECT status, attempts, last_error, provider_message_id, sent_at IS NOT NULL,
                  next_retry_at IS NULL, next_retry_at > now(), lease_expires_at, claim_token IS NOT NULL
             FROM user_alert_deliveries WHERE id = %s"""


def _claimed(conn: psycopg.Connection, count: int, attempts: list[int]) -> list[tuple[int, int]]:
    """count claimed deliveries, the i-th having made attempts[i] attempts before this claim."""
    seed.population(conn, users=count, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    ids = [row[0] for row in conn.execute("SELECT id FROM user_alert_deliveries ORDER BY id").fetchall()]
    assert len(ids) == count
    for delivery_id, made in zip(ids, attempts, strict=True):
        conn.execute("UPDATE user_alert_deliveries SET attempts = %s WHERE id = %s", [made, delivery_id])
    claimed = conn.execute("SELECT delivery_id, claim_token FROM claim_deliveries(%s)", [count]).fetchall()
    return sorted((int(row[0]), int(row[1])) for row in claimed)


def test_one_call_with_mixed_outcomes_leaves_each_row_as_its_outcome_function_does(conn):
    rows = _claimed(conn, 2 * len(CASES), [made for _, _, made in CASES] * 2)
    by_wrapper, by_one_call = rows[:len(CASES)], rows[len(CASES):]
    for (outcome, detail, _), (delivery_id, token) in zip(CASES, by_wrapper, strict=True):
        params = [[delivery_id], [token]] + ([] if outcome == "release" else [[detail]])
        assert conn.execute(WRAPPERS[outcome], params).fetchone() == (1,), outcome
    changed = conn.execute(RECORD, ["psql", [i for i, _ in by_one_call], [t for _, t in by_one_call],
                                    [o for o, _, _ in CASES], [d for _, d, _ in CASES]]).fetchone()
    assert changed == (len(CASES),)
    for case, (wrapped, _), (recorded, _) in zip(CASES, by_wrapper, by_one_call, strict=True):
        expected = conn.execute(STATE, [wrapped]).fetchone()
        assert conn.execute(STATE, [recorded]).fetchone() == expected, case
    assert [conn.execute(STATE, [i]).fetchone() for i, _ in by_one_call] == EXPECTED

def test_in_one_call_only_the_rows_still_held_under_their_token_change(conn):
    (held, token), (other, other_token), (stale, stale_token) = _claimed(conn, 3, [0, 0, 0])
    conn.execute("UPDATE user_alert_deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
                 [stale])
    conn.execute("SELECT reclaim_expired_deliveries()")  # its lease ended: back in the queue, no longer held
    changed = conn.execute(RECORD, ["psql", [held, other, stale], [token, other_token + 1, stale_token],
                                    ["sent", "failed", "sent"], ["msg-1", "550", "msg-3"]]).fetchone()
    assert changed == (1,)
    statuses = dict(conn.execute("SELECT id, status FROM user_alert_deliveries").fetchall())
    assert statuses == {held: "sent", other: "sending", stale: "queued"}


@pytest.mark.parametrize(("outcomes", "message"), [
    (["sent", "sideways"], "pass one outcome per id"),
    (["sent"], "pass one outcome per id"),
    (None, "pass one outcome per id"),
    (["sent", None], "pass one outcome per id"),
])
def test_an_unknown_outcome_or_one_missing_is_refused_and_changes_nothing(conn, outcomes, message):
    rows = _claimed(conn, 2, [0, 0])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"my_caller: {message}"):
        conn.execute(RECORD, ["my_caller", [i for i, _ in rows], [t for _, t in rows], outcomes, None])
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'").fetchone() == (2,)


def test_the_runner_reaches_the_shared_update_only_through_the_outcome_functions(conn):
    internal = "alerts_record_delivery_outcomes(text, bigint[], bigint[], text[], text[])"
    assert conn.execute("SELECT has_function_privilege('alerts_runner', %s, 'EXECUTE')",
                        [internal]).fetchone() == (False,)
    for wrapper in ("mark_deliveries_sent(bigint[], bigint[], text[])", "release_deliveries(bigint[], bigint[])"):
        assert conn.execute("SELECT has_function_privilege('alerts_runner', %s, 'EXECUTE')",
                            [wrapper]).fetchone() == (True,)
