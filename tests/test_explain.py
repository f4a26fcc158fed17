"""alerts_explain(user_id, alert_event_id): what a support person reads when a user asks why an
alert came or did not. It names every rule that decided, it is callable by the read-only role from
psql and through runner.py --explain, and it applies Phase B's own rules: on generated populations
"eligible" is exactly "Phase B made a delivery", and changing one shared rule changes both."""

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests import seed
from tests.conftest import run_runner
from tests.test_properties import PROPERTY_SETTINGS, reset, seed_phase_b, worlds


def explain(conn: psycopg.Connection, user_id: int, alert_event_id: int) -> dict:
    row = conn.execute("SELECT alerts_explain(%s, %s)", [user_id, alert_event_id]).fetchone()
    assert row is not None
    return row[0]


def fan_out(conn: psycopg.Connection) -> None:
    while conn.execute("SELECT alerts_phase_b()").fetchone()[0].get("done") is not True:
        pass


@pytest.fixture
def europe_event(conn: psycopg.Connection) -> tuple[int, int, int]:
    """(recipient, user whose preferences cover Asia, alert event in Europe), fanned out."""
    seed.plan(conn, "pro", max_email=10)
    recipient = seed.user(conn, email="anna@example.com")
    seed.pref(conn, recipient, region="Europe")
    elsewhere = seed.user(conn, email="bo@example.com")
    seed.pref(conn, elsewhere, region="Asia")
    seed.event(conn, region="Europe")
    conn.execute("SELECT alerts_phase_a()")
    fan_out(conn)
    (alert_event_id,) = conn.execute("SELECT id FROM alert_events").fetchone()
    return recipient, elsewhere, alert_event_id


def test_a_recipient_is_eligible_and_a_user_of_another_region_is_not(conn, europe_event):
    recipient, elsewhere, alert_event_id = europe_event
    yes = explain(conn, recipient, alert_event_id)
    assert yes["eligible"] is True, yes
    assert [(d["channel"], d["kind"], d["status"], d["attempts"]) for d in yes["deliveries"]] == [
        ("email", "instant", "queued", 0)]
    assert set(yes["deliveries"][0]) == {"channel", "kind", "status", "attempts", "last_error", "sent_at",
                                         "next_retry_at"}
    said = "\n".join(yes["reasons"])
    assert "plan 'pro' allows HIGH_IMPACT_EVENT alerts" in said
    assert "covers the event's region 'Europe' (preference region 'Europe')" in said
    assert "Channel email: enabled by the plan, the user has a destination, daily cap 10 with 0 other" in said
    assert "Channel sms: the plan 'pro' does not enable it." in said
    assert "Phase B fanned the event out at" in said
    assert "anna@example.com" not in json.dumps(yes)  # a destination is never shown

    no = explain(conn, elsewhere, alert_event_id)
    assert no["eligible"] is False and no["deliveries"] == [], no
    assert ("No enabled preference for HIGH_IMPACT_EVENT alerts covers the event's region 'Europe': "
            "the user's preferences cover 'Asia'.") in no["reasons"], no["reasons"]


def test_each_rule_that_decides_is_named(conn):
    seed.plan(conn, "pro", types=["HIGH_IMPACT_EVENT", "REGIONAL_RISK_SPIKE"], max_email=1,
              delivery_config={"telegram": {"enabled": False}})
    seed.plan(conn, "free", types=["HIGH_IMPACT_EVENT"])
    on_free = seed.user(conn, plan_code=None, email="f@example.com")
    seed.pref(conn, on_free, "REGIONAL_RISK_SPIKE", region="global")
    high = seed.user(conn, email="h@example.com")
    seed.pref(conn, high, "REGIONAL_RISK_SPIKE", region="global", threshold=95)
    unverified = seed.user(conn, email="u@example.com", email_verified=False)
    seed.pref(conn, unverified, "REGIONAL_RISK_SPIKE")
    no_address = seed.user(conn, email="  ", telegram_chat_id="42")
    seed.pref(conn, no_address, "REGIONAL_RISK_SPIKE")
    capped = seed.user(conn, email="c@example.com")
    seed.pref(conn, capped, "REGIONAL_RISK_SPIKE")
    seed.pref(conn, capped, "HIGH_IMPACT_EVENT")
    seed.event(conn, region="Asia")  # fanned out first: takes the capped user's one email of the day
    conn.execute("SELECT alerts_phase_a()")
    fan_out(conn)
    seed.risk_index(conn, "Asia", 85)
    conn.execute("SELECT alerts_phase_a()")
    (spike,) = conn.execute("SELECT id FROM alert_events WHERE alert_type = 'REGIONAL_RISK_SPIKE'").fetchone()
    fan_out(conn)

    def reasons(user_id: int) -> str:
        found = explain(conn, user_id, spike)
        assert found["eligible"] is False, found
        return "\n".join(found["reasons"])

    assert "The user's plan 'free' does not allow REGIONAL_RISK_SPIKE alerts (it allows: HIGH_IMPACT_EVENT)." \
        in reasons(on_free)
    assert "risk score 85 is below the threshold of every matching preference (the lowest is 95)" in reasons(high)
    assert "marked unverified (email_verified = false)" in reasons(unverified)
    assert "Channel email: enabled by the plan, but the user has no email address." in reasons(no_address)
    assert "Channel telegram: the plan 'pro' does not enable it." in reasons(no_address)
    assert "Channel email: the daily cap of 1 alerts was reached (1 other email alerts on" in reasons(capped)
    assert explain(conn, capped, spike)["deliveries"] == []


def test_an_event_outside_the_lookback_window_and_unknown_ids(conn):
    seed.plan(conn, "pro")
    user = seed.user(conn)
    seed.pref(conn, user)
    (old,) = conn.execute(
        "INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint, created_at) "
        "VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'Old', 'HIGH_IMPACT_EVENT:1', now() - interval '30 days') "
        "RETURNING id").fetchone()
    found = explain(conn, user, old)
    assert found["eligible"] is False
    assert any("outside the fanout lookback window (7 days): Phase B will never fan it out" in r
               for r in found["reasons"]), found
    assert explain(conn, user, old + 1000) == {"eligible": False, "deliveries": [],
                                               "reasons": [f"There is no alert event {old + 1000}."]}


@pytest.fixture
def readonly_url(admin_url: str, db_url: str) -> Iterator[str]:
    """A fresh LOGIN role holding alerts_readonly only."""
    name = f"alerts_test_support_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE alerts_readonly").format(sql.Identifier(name)))
    yield db_url.replace("://postgres@", f"://{name}@", 1)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_the_read_only_role_explains_from_psql_and_the_runner_prints_it(conn, db_url, europe_event, readonly_url):
    recipient, elsewhere, alert_event_id = europe_event
    psql = shutil.which("psql")
    assert psql, "psql is installed by scripts/ensure_system_packages.sh"
    out = subprocess.run([psql, readonly_url, "-XAtc", f"SELECT alerts_explain({elsewhere}, {alert_event_id})"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["eligible"] is False
    denied = subprocess.run([psql, readonly_url, "-XAtc", "SELECT alerts_phase_b()"],
                            capture_output=True, text=True, timeout=60)
    assert denied.returncode != 0 and "permission denied" in denied.stderr  # read-only stays read-only

    printed = run_runner(readonly_url, "--explain", str(recipient), str(alert_event_id))
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == explain(conn, recipient, alert_event_id)
    bad = run_runner(db_url, "--explain", "one", "2")
    assert bad.returncode == 2 and "invalid int value" in bad.stderr


def test_phase_b_and_explain_share_their_rules(conn, europe_event):
    """One rule function changed (as a migration would): both the fanout and the explanation follow."""
    recipient, elsewhere, _ = europe_event
    conn.execute("CREATE OR REPLACE FUNCTION alerts_rule_region(pref_region text, event_region text) "
                 "RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT true $$")
    seed.event(conn, title="Second outage", region="Europe")
    conn.execute("SELECT alerts_phase_a()")
    (second,) = conn.execute("SELECT max(id) FROM alert_events").fetchone()
    assert explain(conn, elsewhere, second)["eligible"] is True  # before the fanout: what it will do
    fan_out(conn)
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE alert_event_id = %s AND user_id = %s",
                        [second, elsewhere]).fetchone() == (1,)
    assert explain(conn, recipient, second)["eligible"] is True


OPTOUTS = st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["email", "telegram", "sms"])), max_size=4)


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(world=worlds(), optouts=OPTOUTS)
def test_eligible_is_exactly_a_delivery_made_by_phase_b(conn, world, optouts):
    reset(conn)
    conn.execute("TRUNCATE alerts_channel_optouts")
    user_ids, alert_ids, stale_id = seed_phase_b(conn, world.plans, world.users, world.alerts, world.stale)
    users = sorted(user_ids)
    for index, channel in optouts:  # users who unsubscribed from a channel
        if index < len(users):
            conn.execute("INSERT INTO alerts_channel_optouts (user_id, channel, source) VALUES (%s, %s, 'link') "
                         "ON CONFLICT DO NOTHING", [users[index], channel])
    fan_out(conn)
    made = {(a, u) for a, u in conn.execute("SELECT DISTINCT alert_event_id, user_id FROM user_alert_deliveries")}
    events = [*alert_ids, *([stale_id] if stale_id is not None else [])]
    verdicts = conn.execute(
        "SELECT e, u, (alerts_explain(u, e) ->> 'eligible')::boolean, alerts_explain(u, e) -> 'reasons' "
        "FROM unnest(%s::bigint[]) e CROSS JOIN unnest(%s::bigint[]) u", [events, list(user_ids)]).fetchall()
    event(f"eligible pairs: {min(sum(v[2] for v in verdicts), 4)}")
    if any("daily cap" in r and "reached" in r for v in verdicts for r in v[3]):
        event("a daily cap decided")
    if any("below the threshold" in r for v in verdicts for r in v[3]):
        event("a threshold decided")
    if any("unsubscribed" in r for v in verdicts for r in v[3]):
        event("an unsubscribed channel")
    for alert_event_id, user_id, eligible, reasons in verdicts:
        assert eligible == ((alert_event_id, user_id) in made), (
            f"event {alert_event_id} user {user_id}: explain says eligible={eligible}, Phase B "
            f"{'made' if (alert_event_id, user_id) in made else 'made no'} delivery; reasons: {reasons}; "
            f"user {user_ids[user_id]!r}; alert {alert_ids.get(alert_event_id)!r}; plans {world.plans!r}")


def test_an_unsubscribed_channel_and_a_suppressed_destination_are_said(conn):
    seed.plan(conn, "pro")
    quitter = seed.user(conn, email="quit@example.com", telegram_chat_id="777")
    seed.pref(conn, quitter)
    bounced = seed.user(conn, email="Gone@Example.com")
    seed.pref(conn, bounced)
    conn.execute("INSERT INTO alerts_channel_optouts (user_id, channel, source) VALUES (%s, 'email', 'link')",
                 [quitter])
    conn.execute("INSERT INTO alerts_suppressions (channel, destination, reason, source) "
                 "VALUES ('email', 'gone@example.com', '550 5.1.1 unknown mailbox', 'provider')")
    seed.event(conn)
    conn.execute("SELECT alerts_phase_a()")
    fan_out(conn)
    (alert_event_id,) = conn.execute("SELECT id FROM alert_events").fetchone()

    quit_explained = explain(conn, quitter, alert_event_id)
    assert quit_explained["eligible"] is True  # by Telegram
    assert [d["channel"] for d in quit_explained["deliveries"]] == ["telegram"]
    assert any(r.startswith("Channel email: the user unsubscribed from it (since ") for r in quit_explained["reasons"])

    bounced_explained = explain(conn, bounced, alert_event_id)
    assert bounced_explained["eligible"] is True  # Phase B made the delivery; Phase C skips it
    assert [d["channel"] for d in bounced_explained["deliveries"]] == ["email"]
    line = next(r for r in bounced_explained["reasons"] if r.startswith("Channel email:"))
    assert "But the email destination is suppressed (since " in line and "skipped when sent" in line, line
    text = json.dumps(bounced_explained).lower()
    assert "gone@example.com" not in text and "550" not in text
