"""The runner's credentials do only what a sender needs. Each test plays an attack as a login that
holds only alerts_runner (or no grant at all) and shows it refused or without effect: guessing
another runner's claim tokens, recording an outcome on a row nobody holds, claiming the whole queue
in one call, reading facts of alerts it is not sending, pruning today's sends to reset a quota, and
executing helpers PUBLIC used to have."""

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests import seed
from tests.conftest import run_runner

GUESSES = 2000
HELPERS = ("alerts_lock_key(text)", "alerts_lock_skipped(text)", "alerts_settings()",
           "alerts_user_destination(users, text)")


@pytest.fixture
def login(admin_url: str, db_url: str) -> Iterator:
    """login(group) -> URL of a fresh LOGIN role in group (None: a role with no grant at all)."""
    created: list[str] = []

    def make(group: str | None) -> str:
        name = f"alerts_test_lp_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            statement = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
            if group:
                statement = sql.SQL("{} IN ROLE {}").format(statement, sql.Identifier(group))
            admin.execute(statement)
        created.append(name)
        return db_url.replace("://postgres@", f"://{name}@", 1)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in created:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _queued_deliveries(conn: psycopg.Connection, users: int = 4) -> None:
    seed.population(conn, users=users, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'").fetchone() == (users,)


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


OUTCOMES = {
    "sent": "SELECT mark_deliveries_sent(%s, %s, NULL)",
    "failed": "SELECT mark_deliveries_failed(%s, %s, NULL)",
    "skipped": "SELECT mark_deliveries_skipped(%s, %s, NULL)",
    "requeue": "SELECT requeue_deliveries(%s, %s, NULL)",
    "release": "SELECT release_deliveries(%s, %s)",
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_guessing_another_runners_claim_tokens_changes_nothing(conn, login, outcome):
    """The attacker claims a row of its own right after the victim, so it knows a token issued next to
    the victim's, and tries the 2,000 around it on every row the victim holds (red with tokens from a
    sequence: the victim's token is one below the attacker's)."""
    _queued_deliveries(conn)
    runner_url = login("alerts_runner")
    with psycopg.connect(runner_url, autocommit=True) as victim, \
            psycopg.connect(runner_url, autocommit=True) as attacker:
        held = victim.execute("SELECT delivery_id, claim_token FROM claim_deliveries(2)").fetchall()
        (own_token,) = attacker.execute("SELECT claim_token FROM claim_deliveries(1)").fetchone()
        guesses = [own_token + offset for offset in range(-GUESSES // 2, GUESSES // 2)]
        ids = [delivery_id for delivery_id, _ in held for _ in guesses]
        tokens = [guess for _ in held for guess in guesses]
        assert attacker.execute(OUTCOMES[outcome], [ids, tokens]).fetchone() == (0,)
    assert conn.execute("SELECT id, claim_token FROM user_alert_deliveries WHERE status = 'sending' "
                        "AND id = ANY (%s) ORDER BY id", [[i for i, _ in held]]).fetchall() == sorted(held)


def test_claim_tokens_are_not_a_sequence(conn):
    _queued_deliveries(conn, users=4)
    tokens = [conn.execute("SELECT claim_token FROM claim_deliveries(1)").fetchone()[0] for _ in range(4)]
    assert len(set(tokens)) == 4
    assert all(abs(b - a) > 1_000_000 for a, b in zip(tokens, tokens[1:], strict=False)), tokens


def test_mark_deliveries_sent_leaves_a_failed_row_failed(conn, login):
    _queued_deliveries(conn, users=1)
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        delivery_id, token = runner.execute("SELECT delivery_id, claim_token FROM claim_deliveries(1)").fetchone()
        assert runner.execute("SELECT mark_deliveries_failed(%s, %s, ARRAY['550 no such user'])",
                              [[delivery_id], [token]]).fetchone() == (1,)
        assert runner.execute("SELECT mark_deliveries_sent(%s, %s, ARRAY['msg-1'])",
                              [[delivery_id], [token]]).fetchone() == (0,)
    assert conn.execute("SELECT status, sent_at, provider_message_id FROM user_alert_deliveries").fetchone() == (
        "failed", None, None)


def test_a_sent_digest_outcome_leaves_a_failed_digest_failed(conn, login):
    _one_digest(conn)
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        digest_id, token = runner.execute("SELECT digest_id, claim_token FROM claim_digests(5)").fetchone()
        assert runner.execute("SELECT record_digest_outcomes('failed', %s, %s, ARRAY['bounced'])",
                              [[digest_id], [token]]).fetchone() == (1,)
        assert runner.execute("SELECT record_digest_outcomes('sent', %s, %s, ARRAY['msg-1'])",
                              [[digest_id], [token]]).fetchone() == (0,)
    assert conn.execute("SELECT status, sent_at FROM alert_digests").fetchone() == ("failed", None)
    assert conn.execute("SELECT DISTINCT status FROM user_alert_deliveries").fetchall() == [("failed",)]


@pytest.mark.parametrize("claim", ["claim_deliveries(%s)", "claim_deliveries(%s, NULL)", "claim_digests(%s)"])
def test_a_claim_above_max_claim_batch_is_refused_and_claims_nothing(conn, login, claim):
    _queued_deliveries(conn, users=3)
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        cap = r"above alerts_config.max_claim_batch \(10000\)"
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=cap):
            runner.execute(f"SELECT * FROM {claim}", [2147483647])
        conn.execute("UPDATE alerts_config SET max_claim_batch = 2")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="max_claim_batch"):
            runner.execute(f"SELECT * FROM {claim}", [3])
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status <> 'queued'").fetchone() == (0,)


def test_the_runners_batch_sizes_stay_within_the_default_cap(conn, login):
    """--batch-size is at most 10000 and the bench claims 500: both are accepted by default."""
    _queued_deliveries(conn, users=3)
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        assert len(runner.execute("SELECT * FROM claim_deliveries(500)").fetchall()) == 3
        assert runner.execute("SELECT count(*) FROM claim_digests(10000)").fetchone() == (0,)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE alerts_config SET max_claim_batch = 0")


def test_message_facts_only_for_events_the_caller_holds_a_claim_on(conn, login):
    seed.plan(conn, "pro", delivery_config={"telegram": {"enabled": False}})
    for n in range(2):
        seed.pref(conn, seed.user(conn, email=f"facts{n}@example.com"))
    seed.event(conn, title="Held", age="2 hours")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    seed.event(conn, title="Not claimed")
    conn.execute("SELECT alerts_phase_a()")
    events = [r[0] for r in conn.execute("SELECT id FROM alert_events ORDER BY id")]
    assert len(events) == 2
    runner_url = login("alerts_runner")
    with psycopg.connect(runner_url, autocommit=True) as other, \
            psycopg.connect(runner_url, autocommit=True) as runner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runner.execute("SELECT * FROM alert_message_facts(%s)", [events])
        (others_token,) = other.execute("SELECT claim_token FROM claim_deliveries(1)").fetchone()
        guesses = [others_token + offset for offset in range(-GUESSES // 2, GUESSES // 2) if offset]
        assert runner.execute("SELECT id FROM alert_message_facts(%s, %s)", [events, guesses]).fetchall() == []
        (own_token,) = runner.execute("SELECT claim_token FROM claim_deliveries(1)").fetchone()
        assert runner.execute("SELECT id FROM alert_message_facts(%s, %s)",
                              [events, [own_token]]).fetchall() == [(events[0],)]


def test_message_facts_of_a_claimed_digests_members(conn, login):
    _one_digest(conn)
    (event,) = conn.execute("SELECT id FROM alert_events").fetchone()
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        assert runner.execute("SELECT id FROM alert_message_facts(%s, %s)", [[event], [1, 2, 3]]).fetchall() == []
        (token,) = runner.execute("SELECT claim_token FROM claim_digests(5)").fetchone()
        assert runner.execute("SELECT id FROM alert_message_facts(%s, %s)", [[event], [token]]).fetchall() == [
            (event,)]


def test_prune_below_min_retention_is_refused_so_todays_sends_keep_their_quota(conn, login):
    _queued_deliveries(conn, users=2)
    conn.execute("UPDATE user_alert_deliveries SET status = 'sent', sent_at = now(), "
                 "created_at = now() - interval '3 hours'")
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        for retention in ("1 hour", "1 day", "47 hours"):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"alerts_config.min_retention \(2 days\)"):
                runner.execute("SELECT alerts_prune(%s::interval, 5000)", [retention])
        assert runner.execute("SELECT alerts_prune('2 days', 5000)").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone() == (2,)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE alerts_config SET min_retention = '23 hours'")


def test_prune_batch_is_clamped_to_max_prune_batch(conn, login):
    _queued_deliveries(conn, users=3)
    conn.execute("UPDATE user_alert_deliveries SET status = 'sent', sent_at = now(), "
                 "created_at = now() - interval '100 days'")
    conn.execute("UPDATE alerts_config SET max_prune_batch = 1")
    with psycopg.connect(login("alerts_runner"), autocommit=True) as runner:
        assert runner.execute("SELECT alerts_prune('90 days', 2147483647)").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone() == (2,)


def test_a_role_with_no_grants_cannot_execute_the_helpers(conn, login):
    with psycopg.connect(login(None), autocommit=True) as nobody:
        for helper in HELPERS:
            assert nobody.execute("SELECT has_function_privilege(%s::regprocedure, 'EXECUTE')",
                                  [helper]).fetchone() == (False,), helper
        for call in ("SELECT alerts_lock_key('alerts_v2_phase_c')", "SELECT alerts_lock_skipped('c')",
                     "SELECT alerts_settings()", "SELECT alerts_user_destination(NULL::users, 'email')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                nobody.execute(call)


def test_public_may_execute_no_function_of_the_engine(conn):
    """Every function alerts_owner owns, not only the ones the runner calls."""
    assert conn.execute("""SELECT p.oid::regprocedure::text FROM pg_proc p
                            WHERE p.proowner = 'alerts_owner'::regrole
                              AND has_function_privilege('public', p.oid, 'EXECUTE')
                            ORDER BY 1""").fetchall() == []


def test_status_names_a_connect_only_role_that_holds_a_phase_lock(conn, db_url, login):
    """A role with no grant cannot call alerts_lock_key(), but the key is a public hash: it can hold
    Phase B's lock and stall the phase. --status exits 1 once the phase has had no successful run for
    longer than alerts_config.max_phase_silence, and names the holder."""
    seed.population(conn, users=2, events=1)
    assert run_runner(db_url, "--phase", "a").returncode == 0
    assert run_runner(db_url, "--phase", "b").returncode == 0
    assert json.loads(run_runner(db_url, "--status").stdout)["breaches"] == []
    conn.execute("UPDATE alerts_runs SET started_at = started_at - interval '20 minutes', "
                 "finished_at = finished_at - interval '20 minutes'")
    seed.event(conn, title="Waits for its fanout")
    assert run_runner(db_url, "--phase", "a").returncode == 0
    nobody_url = login(None)
    nobody = nobody_url.split("://", 1)[1].split("@", 1)[0]
    with psycopg.connect(nobody_url, autocommit=True, application_name="rogue-pauser") as rogue:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            rogue.execute("SELECT alerts_lock_key('alerts_v2_phase_b')")
        rogue.execute("SELECT pg_advisory_lock(%s)", [lock_key(PHASE_LOCK_NAMES["b"])])
        skipped = run_runner(db_url, "--phase", "b")
        assert '"skipped": true' in skipped.stdout, skipped.stdout + skipped.stderr
        status = run_runner(db_url, "--status")
        assert status.returncode == 1, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["events_waiting_fanout"] == 1 and report["oldest_waiting_fanout_age_seconds"] > 0
        (breach,) = [b for b in report["breaches"] if b.startswith("phase ")]
        assert breach.startswith("phase b has not completed successfully for 12") and "(900.0 s)" in breach, breach
        assert f"its lock is held by pid {rogue.info.backend_pid} (role {nobody}, application rogue-pauser, " \
               "from 127.0.0.1, connected at " in breach, breach
        assert [p["phase"] for p in report["stalled_phases"]] == ["b"], "phase a succeeded a moment ago"
    assert run_runner(db_url, "--phase", "b").returncode == 0
    assert json.loads(run_runner(db_url, "--status").stdout)["breaches"] == []
