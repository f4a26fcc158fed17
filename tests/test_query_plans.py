"""The hot queries' plans, read from inside the real functions with auto_explain:
the claim walks the queue index in order and never sorts the queue (FIELD-NOTES.md), outcomes
update by primary key, the fanout inserts without ON CONFLICT unless it must, and a Phase A
rerun builds nothing for events already alerted."""

import re

import psycopg

from tests import seed


def _nested_plans(conn: psycopg.Connection, statement: str, *, analyze: bool = False) -> str:
    """The plans auto_explain reports for every statement the call runs, as text."""
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                    "auto_explain.log_level = notice", "client_min_messages = notice",
                    f"auto_explain.log_analyze = {'on' if analyze else 'off'}"):
        conn.execute(f"SET {setting}")
    conn.execute(statement)
    conn.execute("RESET auto_explain.log_min_duration")
    return "\n".join(plans)


def _plan_of(plans: str, marker: str) -> str:
    """The one statement's plan, among those auto_explain reported, that contains marker."""
    found = [plan for plan in plans.split("Query Text:") if marker in plan]
    assert len(found) == 1, plans
    return found[0]


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


def test_outcomes_update_by_primary_key(conn):
    seed.population(conn, users=2000, events=2)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")  # no ANALYZE since: the estimate is the bulk load's
    claimed = conn.execute("SELECT delivery_id, claim_token FROM claim_deliveries(100)").fetchall()
    ids, tokens = [row[0] for row in claimed], [row[1] for row in claimed]
    plans = _nested_plans(conn, f"SELECT mark_deliveries_sent(ARRAY{ids}::bigint[], ARRAY{tokens}::bigint[], NULL)")
    update = _plan_of(plans, "Update on user_alert_deliveries")
    assert "Seq Scan on user_alert_deliveries" not in update, update
    by_key = r"(Index Scan using|Bitmap Index Scan on) user_alert_deliveries_(pkey|sending_idx)"
    assert re.search(by_key, update), update


def test_outcomes_keep_their_plan_in_a_long_lived_session(conn):
    """A runner records batch after batch on one connection: the tenth call is planned for its arrays
    as the first was, never with a generic plan that joins 500 ids in a nested loop."""
    seed.population(conn, users=3000, events=2)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("ANALYZE user_alert_deliveries")
    _nested_plans(conn, "SELECT 1")  # auto_explain reports every statement of this connection from now on
    conn.execute("SET auto_explain.log_min_duration = 0")
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    for _ in range(10):
        claimed = conn.execute("SELECT delivery_id, claim_token FROM claim_deliveries(500)").fetchall()
        conn.execute("SELECT mark_deliveries_sent(%b, %b, %b)",
                     [[row[0] for row in claimed], [row[1] for row in claimed], ["id"] * len(claimed)])
    updates = [plan for plan in plans if "Update on user_alert_deliveries" in plan and "'sent'" in plan]
    assert len(updates) >= 10, plans
    assert "Nested Loop" not in updates[-1], updates[-1]


def test_fanout_inserts_without_on_conflict_unless_deliveries_exist(conn):
    seed.population(conn, users=200, events=3)
    conn.execute("SELECT alerts_phase_a()")
    insert = _plan_of(_nested_plans(conn, "SELECT alerts_phase_b()"), "Insert on user_alert_deliveries")
    assert "Conflict Resolution" not in insert, insert
    # Users and their plans are read once per user (CTE user_channels), not once per (event, user).
    ctes = dict(re.findall(r"CTE (\w+)\n(.*?)(?=\n\s*CTE \w+\n|\Z)", insert, flags=re.S))
    assert "user_channels" in ctes, insert
    readers = {name for name, text in ctes.items() if re.search(r" on (users|user_plans) ", text)}
    assert readers == {"user_channels"}, insert
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL")
    plans = _nested_plans(conn, "SELECT alerts_phase_b()")
    assert "Conflict Resolution: NOTHING" in _plan_of(plans, "Insert on user_alert_deliveries"), plans


def test_phase_a_rerun_reads_no_event_already_alerted(conn):
    seed.population(conn, users=1, events=300)
    assert conn.execute("SELECT alerts_phase_a()->'created'").fetchone() == (300,)
    plans = _nested_plans(conn, "SELECT alerts_phase_a()", analyze=True)
    insert = _plan_of(plans, "Insert on alert_events")
    events_read = re.findall(r"on events ev .*?actual time=[\d.]+\.\.[\d.]+ rows=(\d+)", insert)
    assert events_read == ["0"], insert


def test_fanout_over_unanalysed_host_tables_uses_no_nested_loop(conn):
    """Users and prefs bulk-loaded and never analysed: alerts_owner may not ANALYZE the host's
    tables (PostgreSQL < 17), so the fanout is planned without nested loops, which only a trusted
    estimate justifies (58 s instead of 1.3 s at bench scale small)."""
    seed.population(conn, users=3000, events=3)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT pg_stat_force_next_flush()")
    assert conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('users', 'user_alert_prefs') "
                        "AND last_analyze IS NULL AND last_autoanalyze IS NULL").fetchone() == (2,)
    insert = _plan_of(_nested_plans(conn, "SELECT alerts_phase_b()"), "Insert on user_alert_deliveries")
    # Each CTE's plan, and the statement's own (before the first CTE); plan_channels' cross join of
    # plan_settings with the three channels has no join key and is a nested loop by nature.
    blocks = re.split(r"\n\s*CTE (\w+)\n", insert)
    parts = {"statement": blocks[0], **dict(zip(blocks[1::2], blocks[2::2], strict=True))}
    looping = sorted(name for name, text in parts.items() if "Nested Loop" in text and name != "plan_channels")
    assert "user_channels" in parts and looping == [], insert
