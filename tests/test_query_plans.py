"""The hot queries' plans, read from inside the real functions with auto_explain:
the claim walks the queue index in order and never sorts the queue (FIELD-NOTES.md)."""

import psycopg

from tests import seed


def _nested_plans(conn: psycopg.Connection, statement: str) -> str:
    """The plans auto_explain reports for every statement the call runs, as text."""
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                    "auto_explain.log_level = notice", "client_min_messages = notice"):
        conn.execute(f"SET {setting}")
    conn.execute(statement)
    conn.execute("RESET auto_explain.log_min_duration")
    return "\n".join(plans)


def test_claim_uses_the_queue_index_without_sorting(conn):
    # One fanout gives thousands of rows the same created_at: the worst case for the claim order.
    seed.population(conn, users=5000, events=4)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("ANALYZE user_alert_deliveries")
    plans = _nested_plans(conn, "SELECT * FROM claim_deliveries(100)")
    assert "CTE due_deliveries" in plans, plans
    due_plan = plans.split("CTE due_deliveries")[1].split("CTE claimed_deliveries")[0]
    assert "Index Scan using user_alert_deliveries_queued_idx" in due_plan, due_plan
    assert "Sort" not in due_plan, due_plan
