"""The hot queries' plans, read from inside the real functions with auto_explain (as JSON, so the
tests look at plan nodes, never at how the SQL names its parts): the claim walks the queue index
in order and never sorts the queue (FIELD-NOTES.md), outcomes update by primary key, the fanout
inserts without ON CONFLICT unless it must and reads each user once, and a Phase A rerun builds
nothing for events already alerted."""

import json
import re
from collections.abc import Iterator

import psycopg
import pytest

from tests import seed

Plan = dict[str, object]


def _nested_plans(conn: psycopg.Connection, statement: str, *, analyze: bool = False,
                  plan_format: str = "text") -> list[str]:
    """The plans auto_explain reports for every statement the call runs."""
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                    "auto_explain.log_level = notice", "client_min_messages = notice",
                    f"auto_explain.log_analyze = {'on' if analyze else 'off'}",
                    f"auto_explain.log_format = {plan_format}"):
        conn.execute(f"SET {setting}")
    conn.execute(statement)
    conn.execute("RESET auto_explain.log_min_duration")
    return plans


def _plan_of(plans: list[str], marker: str) -> str:
    """The one statement's plan, among those auto_explain reported, that contains marker."""
    found = [plan for plan in plans if marker in plan]
    assert len(found) == 1, "\n".join(plans)
    return found[0]


def _tree_plans(conn: psycopg.Connection, statement: str) -> list[Plan]:
    """The plan tree of every statement the call runs."""
    reported = _nested_plans(conn, statement, plan_format="json")
    return [json.loads(text[text.index("{"):])["Plan"] for text in reported if "{" in text]


def _nodes(node: Plan) -> Iterator[Plan]:
    """node and every node below it, init plans and CTEs included."""
    yield node
    for child in node.get("Plans", []):  # type: ignore[union-attr]
        yield from _nodes(child)


def _inputs(node: Plan) -> Iterator[Plan]:
    """node and the nodes it reads rows from: its init plans and CTEs, which it only refers to, left out."""
    yield node
    for child in node.get("Plans", []):  # type: ignore[union-attr]
        if child.get("Parent Relationship") not in ("InitPlan", "SubPlan"):
            yield from _inputs(child)


def _relations(node: Plan) -> set[str]:
    return {str(n["Relation Name"]) for n in _nodes(node) if "Relation Name" in n}


def _modifying(plans: list[Plan], operation: str, relation: str) -> Plan:
    """The one statement whose plan has operation (Insert, Update) on relation."""
    found = [plan for plan in plans if any(n.get("Node Type") == "ModifyTable" and n.get("Operation") == operation
                                           and n.get("Relation Name") == relation for n in _nodes(plan))]
    assert len(found) == 1, json.dumps(plans, indent=1)
    return found[0]


def test_claim_uses_the_queue_index_without_sorting(conn):
    # One fanout gives thousands of rows the same created_at: the worst case for the claim order.
    seed.population(conn, users=5000, events=4)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("ANALYZE user_alert_deliveries")
    claim = _modifying(_tree_plans(conn, "SELECT * FROM claim_deliveries(100)"), "Update", "user_alert_deliveries")
    queue_scans = [n for n in _nodes(claim) if n.get("Index Name") == "user_alert_deliveries_queued_idx"]
    assert [n["Node Type"] for n in queue_scans] == ["Index Scan"], json.dumps(claim, indent=1)
    sorting_the_queue = [n for n in _nodes(claim) if "Sort" in str(n["Node Type"])
                         and any(q is m for q in queue_scans for m in _inputs(n))]
    assert sorting_the_queue == [], json.dumps(claim, indent=1)


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
    insert = _modifying(_tree_plans(conn, "SELECT alerts_phase_b()"), "Insert", "user_alert_deliveries")
    assert not any("Conflict Resolution" in n for n in _nodes(insert)), json.dumps(insert, indent=1)
    # Users and their plans are read by one scan each, once per user, not once per (event, user).
    scans = [n["Relation Name"] for n in _nodes(insert) if n.get("Relation Name") in ("users", "user_plans")]
    assert sorted(scans) == ["user_plans", "users"], json.dumps(insert, indent=1)
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL")
    insert = _modifying(_tree_plans(conn, "SELECT alerts_phase_b()"), "Insert", "user_alert_deliveries")
    assert any(n.get("Conflict Resolution") == "NOTHING" for n in _nodes(insert)), json.dumps(insert, indent=1)


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
    insert = _modifying(_tree_plans(conn, "SELECT alerts_phase_b()"), "Insert", "user_alert_deliveries")
    # The one nested loop allowed: plan_settings crossed with the three channels (a VALUES list),
    # which has no join key and is a nested loop by nature.
    looping = [_relations(n) for n in _nodes(insert) if n["Node Type"] == "Nested Loop"]
    assert all(relations <= {"plan_settings"} for relations in looping), json.dumps(insert, indent=1)
    assert "users" in _relations(insert)


def _history(conn: psycopg.Connection) -> None:
    """Two years of twice-daily readings for 60 regions (and 4 assets in each), 100,000 events of
    which a few are recent: the size where a sequential scan shows in a plan."""
    conn.execute("INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at) "
                 "SELECT 'Region ' || r, 7, CASE WHEN h = 0 AND r <= 5 THEN 85 ELSE 40 END, 'up', "
                 "       now() - interval '1 hour' - h * interval '12 hours' "
                 "  FROM generate_series(1, 60) r, generate_series(0, 1459) h")
    conn.execute("INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at) "
                 "SELECT a, 'Region ' || r, 7, CASE WHEN h = 0 AND r <= 3 THEN 90 ELSE 30 END, 'up', "
                 "       now() - interval '1 hour' - h * interval '12 hours' "
                 "  FROM unnest(ARRAY['oil', 'gas', 'fx', 'freight']) a, generate_series(1, 20) r, "
                 "       generate_series(0, 1459) h")
    conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at) "
                 "SELECT 'Event ' || g, 'Europe', 'supply', 1 + g % 5, now() - (g % 700) * interval '1 day' "
                 "  FROM generate_series(1, 100000) g")
    conn.execute("ANALYZE risk_indices, asset_risk, events")


def _sequential_scans(plans: list[Plan], relations: set[str]) -> list[str]:
    return [str(n["Relation Name"]) for plan in plans for n in _nodes(plan)
            if n.get("Node Type") == "Seq Scan" and n.get("Relation Name") in relations]


@pytest.mark.parametrize("stored_as", ["timestamptz", "timestamp"])
def test_phase_a_and_message_facts_read_the_history_by_index_only(conn, stored_as):
    """Phase A's recent readings, the reading before a spike and a message's reading and baseline
    are index look-ups: flat in the years of history, also where the host stores naive timestamps,
    as the original application does (red with a cast on calculated_at, or without the source
    indexes)."""
    for table in ("risk_indices", "asset_risk"):
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN calculated_at TYPE {stored_as}")
    _history(conn)
    plans = _tree_plans(conn, "SELECT alerts_phase_a()")
    spikes = [r[0] for r in conn.execute("SELECT id FROM alert_events WHERE alert_type <> 'HIGH_IMPACT_EVENT'")]
    assert len(spikes) == 5 + 3 * 4, spikes
    assert _sequential_scans(plans, {"events", "risk_indices", "asset_risk"}) == []
    facts_plans = _tree_plans(conn, f"SELECT * FROM alert_message_facts(ARRAY{spikes}::bigint[])")
    assert _sequential_scans(facts_plans, {"events", "risk_indices", "asset_risk"}) == []
    previous = conn.execute("SELECT count(*) FROM alert_message_facts(%s) WHERE previous_score = 40 OR "
                            "previous_score = 30", [spikes]).fetchone()
    assert previous == (len(spikes),), "each spike's baseline is the reading before it"
