"""Phase D and digest sending: one message per user, channel and window, once, whatever overlaps."""

import json
import subprocess
import sys
import threading
from collections import Counter

import psycopg
import pytest

from tests import seed
from tests.conftest import ROOT, run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.watchers import wait_for


def _digest_user(conn: psycopg.Connection, events: int = 5) -> int:
    """A user whose plan sends email as a daily digest, with `events` high-impact events fanned out yesterday."""
    seed.plan(conn, "personal", delivery_config={"email": {"enabled": True, "digest": True},
                                                  "telegram": {"enabled": False}})
    user = seed.user(conn, plan_code="personal", email="digest@example.com")
    seed.pref(conn, user)
    for n in range(events):
        seed.event(conn, title=f"Event {n}", severity=4 + n % 2)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day'")
    return user


def _outbox(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_five_events_become_one_digest_message_once(conn, db_url, tmp_path):
    _digest_user(conn)
    assert conn.execute("SELECT delivery_kind, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [
        ("digest", 5)]
    outbox = tmp_path / "outbox.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}"}
    for _ in range(2):
        result = run_runner(db_url, "--phase", "all", env=env)
        assert result.returncode == 0, result.stderr
    messages = _outbox(outbox)
    assert len(messages) == 1
    digest = messages[0]
    assert digest["kind"] == "digest" and digest["destination"] == "digest@example.com"
    assert len(digest["delivery_ids"]) == 5 and digest["body"].count("\n- [") == 5
    assert "5 alerts" in digest["subject"]
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [("sent", 5)]
    assert conn.execute("SELECT status, digest_key FROM alert_digests").fetchone()[0] == "sent"


def test_phase_d_twice_creates_one_digest_with_the_contract_key(conn, db_url):
    user = _digest_user(conn)
    first = conn.execute("SELECT alerts_phase_d()").fetchone()[0]
    second = conn.execute("SELECT alerts_phase_d()").fetchone()[0]
    assert (first["digests_created"], first["deliveries_digested"]) == (1, 5)
    assert (second["digests_created"], second["deliveries_digested"]) == (0, 0)
    key = conn.execute("SELECT digest_key FROM alert_digests").fetchone()[0]
    day = conn.execute("SELECT to_char((now() AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD')").fetchone()[0]
    assert key == f"{user}:email:daily:{day}T00:00:00Z"


def test_an_open_window_is_not_digested_yet(conn):
    _digest_user(conn)
    conn.execute("UPDATE user_alert_deliveries SET created_at = now()")
    assert conn.execute("SELECT alerts_phase_d() -> 'digests_created'").fetchone() == (0,)
    conn.execute("UPDATE alerts_config SET digest_period = 'hourly', digest_grace = '0'")
    conn.execute("UPDATE user_alert_deliveries SET created_at = now() - interval '1 hour'")
    assert conn.execute("SELECT alerts_phase_d() -> 'digests_created'").fetchone() == (1,)


def test_overlapping_runners_send_the_digest_once(conn, db_url, tmp_path):
    _digest_user(conn, events=7)
    outbox = tmp_path / "outbox.jsonl"
    env = {"DATABASE_URL": db_url, "ALERTS_SENDER": f"file:{outbox}", "PATH": "/usr/bin:/bin"}
    for _ in range(3):
        runners = [subprocess.Popen([sys.executable, "runner.py", "--phase", "all"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
        for runner in runners:
            _, err = runner.communicate(timeout=120)
            assert runner.returncode == 0, err
    run_runner(db_url, "--phase", "c", env={"ALERTS_SENDER": f"file:{outbox}"})
    messages = _outbox(outbox)
    assert [m["kind"] for m in messages] == ["digest"]
    assert Counter(messages[0]["delivery_ids"]).most_common(1)[0][1] == 1 and len(messages[0]["delivery_ids"]) == 7


def test_a_late_member_gets_a_digest_of_its_own(conn, db_url, tmp_path):
    _digest_user(conn, events=2)
    outbox = tmp_path / "outbox.jsonl"
    env = {"ALERTS_SENDER": f"file:{outbox}"}
    assert run_runner(db_url, "--phase", "all", env=env).returncode == 0
    seed.event(conn, title="Late event", severity=5)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = now() - interval '1 day' WHERE status = 'queued'")
    assert run_runner(db_url, "--phase", "all", env=env).returncode == 0
    messages = _outbox(outbox)
    assert [len(m["delivery_ids"]) for m in messages] == [2, 1]
    keys = [k for (k,) in conn.execute("SELECT digest_key FROM alert_digests ORDER BY id").fetchall()]
    assert ":late:" in keys[1] and keys[1].startswith(keys[0])
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall() == [("sent", 3)]


def test_digest_email_arrives_as_one_message_with_a_digest_message_id(conn, db_url):
    _digest_user(conn)
    with FakeSmtpServer() as smtp:
        result = run_runner(db_url, "--phase", "all",
                            env={"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com"})
        messages = list(smtp.messages)
    assert result.returncode == 0, result.stderr
    assert len(messages) == 1
    email = messages[0].email
    digest_id = conn.execute("SELECT id FROM alert_digests").fetchone()[0]
    assert email["Message-ID"] == f"<alerts-v2-digest-{digest_id}@example.com>"
    assert "5 alerts" in email["Subject"]
    assert all(f"Event {n}" in messages[0].part("text/plain") for n in range(5))


def test_a_permanently_failed_digest_fails_its_members(conn, db_url):
    _digest_user(conn, events=3)
    conn.execute("SELECT alerts_phase_d()")
    claimed = conn.execute("SELECT digest_id, claim_token FROM claim_digests(5)").fetchall()
    digest_ids, tokens = [r[0] for r in claimed], [r[1] for r in claimed]
    assert conn.execute("SELECT record_digest_outcomes('failed', %s, %s, %s)",
                        [digest_ids, tokens, ["550 mailbox unavailable"]]).fetchone() == (1,)
    assert conn.execute("SELECT status, last_error, count(*) FROM user_alert_deliveries GROUP BY 1, 2").fetchall() == [
        ("failed", "550 mailbox unavailable", 3)]
    assert conn.execute("SELECT record_digest_outcomes('failed', %s, %s, %s)",
                        [digest_ids, tokens, ["late"]]).fetchone() == (0,)


def test_a_digest_claim_skips_digests_another_claimer_holds(conn, db_url):
    _digest_user(conn, events=2)
    other = seed.user(conn, plan_code="personal", email="other@example.com")
    seed.pref(conn, other)
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = now() - interval '1 day'")
    assert conn.execute("SELECT alerts_phase_d() -> 'digests_created'").fetchone() == (2,)
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        first_ids = {r[0] for r in first.execute("SELECT digest_id FROM claim_digests(1)").fetchall()}
        second.execute("SET statement_timeout = '3s'")
        second_ids = {r[0] for r in second.execute("SELECT digest_id FROM claim_digests(1)").fetchall()}
        first.rollback()
        second.rollback()
    assert len(first_ids) == 1 and len(second_ids) == 1 and not first_ids & second_ids


def _digest_in_flight_with_a_late_member(conn: psycopg.Connection) -> tuple[int, int]:
    """A digest claimed (sending) when a late member of its window arrives and Phase D opens a
    second digest for it. Returns the first digest's (id, claim_token)."""
    user = _digest_user(conn, events=2)
    conn.execute("SELECT alerts_phase_d()")
    first = conn.execute("SELECT digest_id, claim_token FROM claim_digests(5)").fetchone()
    seed.event(conn, title="Late event")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day' "
                 "WHERE user_id = %s AND digest_id IS NULL", [user])
    assert conn.execute("SELECT alerts_phase_d()").fetchone()[0]["digests_created"] == 1
    assert conn.execute("SELECT status, count(*) FROM alert_digests GROUP BY 1 ORDER BY 1").fetchall() == [
        ("queued", 1), ("sending", 1)]
    return int(first[0]), int(first[1])


@pytest.mark.parametrize("back_to_queue", ["release", "requeue", "lease_expired"])
def test_a_digest_back_in_the_queue_beside_a_late_one_stops_nobody(conn, db_url, tmp_path, back_to_queue):
    """The first digest goes back to the queue while a second one waits for the same window: it merges
    into that one instead of breaking the one-queued-digest-per-window rule (which stopped every
    Phase C at reclaim), and every member is sent once, with instant deliveries going on meanwhile."""
    digest_id, token = _digest_in_flight_with_a_late_member(conn)
    seed.plan(conn, "pro", delivery_config={"telegram": {"enabled": False}})
    instant_user = seed.user(conn, plan_code="pro", email="instant@example.com")
    seed.pref(conn, instant_user)
    seed.event(conn, title="Instant event")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    if back_to_queue == "lease_expired":
        conn.execute("UPDATE alert_digests SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
                     [digest_id])
    else:
        details = [] if back_to_queue == "release" else [["451 try later"]]
        placeholders = ", %s" * (2 + len(details))
        assert conn.execute(f"SELECT record_digest_outcomes(%s{placeholders})",
                            [back_to_queue, [digest_id], [token], *details]).fetchone() == (1,)
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "c", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    messages = _outbox(outbox)
    digests = [m for m in messages if m.get("kind") == "digest"]
    assert len(digests) == 1 and len(digests[0]["delivery_ids"]) == 3, messages
    assert any(m["destination"] == "instant@example.com" for m in messages)
    # the digest user's own delivery of the instant event waits for today's window
    assert conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1 ORDER BY 1").fetchall() == [
        ("queued", 1), ("sent", 4)]
    assert conn.execute("SELECT status, last_error FROM alert_digests WHERE id = %s", [digest_id]).fetchone() == (
        "skipped", f"merged into digest {digests[0]['digest_id']}, queued for the same window")


def test_phase_d_never_adds_a_member_to_a_digest_being_claimed(conn, db_url):
    """A sender claims the window's open digest while Phase D is adding a new member to it: the
    member must not join the claimed digest (its message would not list it, yet its outcome would
    mark it sent); it waits for a digest of its own."""
    user = _digest_user(conn, events=1)
    conn.execute("SELECT alerts_phase_d()")
    seed.event(conn, title="Joins late")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute("UPDATE user_alert_deliveries SET created_at = created_at - interval '1 day' "
                 "WHERE user_id = %s AND digest_id IS NULL", [user])
    with psycopg.connect(db_url) as claimer:
        claimed = claimer.execute("SELECT digest_id, items FROM claim_digests(5)").fetchone()  # not committed yet
        assert len(claimed[1]) == 1
        result: list = []
        phase_d = threading.Thread(target=lambda: result.append(
            psycopg.connect(db_url, autocommit=True).execute("SELECT alerts_phase_d()").fetchone()[0]))
        phase_d.start()
        wait_for(lambda: conn.execute(  # Phase D waits for the claimer's row lock on the digest
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE "
            "'%alerts_phase_d()%' AND cardinality(pg_blocking_pids(pid)) > 0").fetchone() == (1,) or bool(result),
            30, "Phase D waiting for the claimed digest, or done")
        claimer.commit()
    phase_d.join(30)
    attached = conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE digest_id = %s",
                            [claimed[0]]).fetchone()
    assert attached == (1,), "Phase D attached a member to a digest that a sender had claimed"
    assert result and result[0]["deliveries_digested"] == 0
    assert conn.execute("SELECT alerts_phase_d()").fetchone()[0]["deliveries_digested"] == 1


def test_the_digest_subject_names_the_utc_window_whatever_the_database_time_zone(conn, db_url, tmp_path):
    """A database whose TimeZone is UTC-10: the runner's session reads window_start in that zone,
    and the subject must still name the UTC day and hour the window starts at."""
    _digest_user(conn)
    database = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(f"ALTER DATABASE {database} SET timezone TO 'Etc/GMT+10'")
    conn.execute("UPDATE alerts_config SET digest_period = 'hourly'")
    conn.execute("UPDATE user_alert_deliveries SET created_at = date_trunc('day', now()) - interval '2 hours'")
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    (window,) = conn.execute("SELECT to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                             "FROM alert_digests").fetchone()
    (message,) = _outbox(outbox)
    assert f"for {window} UTC:" in message["subject"], (window, message["subject"])
