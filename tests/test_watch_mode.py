"""Watch mode (`runner.py --watch`) as a real process: it reacts to a notification at once,
coalesces a burst into one pass, falls back on its poll and its retry/lease timer, retries soon
when another process holds a phase's lock, stops on SIGTERM, and --status reports it dead."""

import json
import signal
import time

import pytest

import runner
from alerts import watch
from alerts.senders.console import ConsoleSender
from alerts.watch import settings_from_env
from tests import seed
from tests.conftest import run_runner
from tests.watchers import Watcher, all_sent, outbox_counts, scalar, wait_for, watcher_ready


def _passes(conn, name: str) -> int:
    return int(scalar(conn, "SELECT passes FROM alerts_watchers WHERE name = %s", [name]))


def test_a_new_event_is_sent_at_once_on_its_notification(conn, db_url, tmp_path):
    seed.population(conn, users=50, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}")  # poll 60 s: only a notification is this fast
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        seed.event(conn, age="0 seconds")
        took = wait_for(lambda: len(outbox_counts(outbox)) == 50, 10, "50 messages in the outbox")
        assert took < 5, took
        wait_for(all_sent(conn, 50), 10, "the 50 deliveries recorded sent")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert "(source)" in watcher.stderr, watcher.stderr
    print(f"50 users alerted {took:.2f} s after the event's commit")


def test_a_burst_of_transactions_coalesces_into_one_pass(conn, db_url, tmp_path):
    seed.population(conn, users=5, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        before = _passes(conn, "w1")
        watcher.proc.send_signal(signal.SIGSTOP)  # 40 commits, 40 notifications, while it cannot look
        try:
            for n in range(40):
                seed.event(conn, title=f"Burst {n}", age="0 seconds")
            # The server hands notifications to the listening connection after the commit returns:
            # give the last ones time to reach its socket, so all 40 are waiting when it wakes.
            time.sleep(1)
        finally:
            watcher.proc.send_signal(signal.SIGCONT)
        wait_for(all_sent(conn, 200), 20, "200 deliveries sent")
        time.sleep(1)  # any pass still owed to a notification would run now
        passes = _passes(conn, "w1") - before
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert passes == 1, f"40 notifications made {passes} passes"
    assert max(outbox_counts(outbox).values()) == 1


def test_without_notifications_the_poll_finds_the_rows(conn, db_url, tmp_path):
    conn.execute("DROP TRIGGER alerts_v2_notify_watchers ON events")  # as if every notification were lost
    seed.population(conn, users=5, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", ALERTS_WATCH_POLL_SECONDS="1")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        seed.event(conn, age="0 seconds")
        took = wait_for(all_sent(conn, 5), 10, "5 deliveries sent by the poll")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert took < 3, took


def test_the_watcher_wakes_for_a_due_retry_without_a_notification(conn, db_url, tmp_path):
    seed.population(conn, users=3, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    # due in 4 s: time for the watcher to start and make its first pass before the retry is due
    conn.execute("UPDATE user_alert_deliveries SET attempts = 1, next_retry_at = now() + interval '4 seconds'")
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}")  # poll 60 s
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        assert outbox_counts(outbox) == {}, "a delivery waiting for its retry was sent early"
        took = wait_for(all_sent(conn, 3), 10, "the 3 retries sent")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert took < 6, took  # the retry's own time, not the 60 s poll
    assert "(timer)" in watcher.stderr


def test_a_phase_skipped_for_its_lock_is_retried_soon(conn, db_url, tmp_path):
    seed.population(conn, users=4, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}")  # poll 60 s
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        conn.execute("SELECT pg_advisory_lock(alerts_lock_key('alerts_v2_phase_c'))")  # a cron run sending
        seed.event(conn, age="0 seconds")
        wait_for(lambda: scalar(conn, "SELECT count(*) FROM user_alert_deliveries") == 4, 10, "the fanout")
        before = _passes(conn, "w1")
        wait_for(lambda: _passes(conn, "w1") > before, 10, "a retry while the lock was held")
        assert outbox_counts(outbox) == {}
        conn.execute("SELECT pg_advisory_unlock(alerts_lock_key('alerts_v2_phase_c'))")
        took = wait_for(all_sent(conn, 4), 10, "4 deliveries sent once the lock was free")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert took < 2.5, took  # the retries after 0.5 s, 1 s, 2 s: the lock was held about 0.5 s


def test_a_long_held_lock_is_retried_less_and_less_often(conn, db_url, tmp_path):
    """A cron run sending a backlog holds Phase C for a while: the watcher retries after 0.5 s, then
    1, 2, 4, at most 8 s apart, not twice a second for as long as it lasts. Live: three retries take
    0.5 + 1 + 2 = 3.5 s (1.5 s at a steady 0.5 s); the whole sequence is checked in-process below."""
    seed.population(conn, users=4, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}")  # poll 60 s
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        conn.execute("SELECT pg_advisory_lock(alerts_lock_key('alerts_v2_phase_c'))")
        seed.event(conn, age="0 seconds")
        wait_for(lambda: scalar(conn, "SELECT count(*) FROM user_alert_deliveries") == 4, 10, "the fanout")
        before = _passes(conn, "w1")
        took = wait_for(lambda: _passes(conn, "w1") - before >= 3, 20, "three retries while the lock was held")
        conn.execute("SELECT pg_advisory_unlock(alerts_lock_key('alerts_v2_phase_c'))")
        # the next retry is 4 s away: wake it as the trigger on new deliveries would
        conn.execute("SELECT pg_notify('alerts_v2_wake', 'deliveries')")
        wait_for(all_sent(conn, 4), 12, "4 deliveries sent once the lock was free")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    assert took >= 2.5, f"three retries {took:.2f} s after the first pass that found the lock held"


def test_the_busy_retry_delay_doubles_from_half_a_second_up_to_8_seconds():
    watcher = watch.Watcher(settings_from_env("postgresql://127.0.0.1/x", 100, 100, env={}), ConsoleSender())
    delays = []
    for _ in range(7):
        delays.append(watcher._busy_delay())
        watcher.busy_passes += 1  # what run() does after each pass that found a lock held
    assert delays == [0.5, 1, 2, 4, 8, 8, 8]


def test_sigterm_stops_the_watcher_cleanly_and_status_reports_a_dead_one(conn, db_url, tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    calm, doomed = (Watcher(db_url, tmp_path, name, f"file:{outbox}") for name in ("calm", "doomed"))
    wait_for(lambda: watcher_ready(conn, "calm")() and watcher_ready(conn, "doomed")(), 30, "both watchers up")
    started = time.monotonic()
    assert calm.stop() == 3, calm.stderr
    assert time.monotonic() - started < 3
    assert json.loads(calm.stdout.splitlines()[-1])["watch"] == "stopped"
    doomed.kill()
    wait_for(lambda: scalar(conn, "SELECT now() - heartbeat_at > interval '1.2 seconds' FROM alerts_watchers "
                                  "WHERE name = 'doomed'"), 10, "the dead watcher silent for more than 1 s")
    status = run_runner(db_url, "--status", env={"ALERTS_STATUS_MAX_WATCHER_SILENCE_SECONDS": "1"})
    assert status.returncode == 1, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert [b for b in report["breaches"] if "watcher" in b] == [
        "watcher doomed has sent no heartbeat for more than ALERTS_STATUS_MAX_WATCHER_SILENCE_SECONDS=1 "
        "(dead, or stuck in one pass)"]
    assert {w["name"]: w["status"] for w in report["watchers"]} == {"calm": "stopped", "doomed": "running"}


def test_an_unreachable_listen_url_falls_back_to_the_poll_and_logs_one_line(conn, db_url, tmp_path):
    seed.population(conn, users=3, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", ALERTS_WATCH_POLL_SECONDS="1",
                      ALERTS_LISTEN_URL="postgresql://alerts:s3cret@127.0.0.1:1/nowhere")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        seed.event(conn, age="0 seconds")
        wait_for(all_sent(conn, 3), 10, "3 deliveries sent by the poll")
        time.sleep(2.5)  # several more attempts to listen, with backoff
    finally:
        assert watcher.stop() == 3, watcher.stderr
    lost = [line for line in watcher.stderr.splitlines() if "listen connection" in line]
    assert len(lost) == 1 and "lost" in lost[0], watcher.stderr
    assert "s3cret" not in watcher.stderr and "alerts:***@" in lost[0]


def test_watch_with_a_phase_is_refused_with_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        runner.parse_args(["--watch", "--phase", "a"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(lines) == 1 and "--watch runs every phase itself" in lines[0], lines


def test_bad_watch_settings_fail_with_one_line_and_exit_2(db_url):
    for env, args, expected in (
        ({"ALERTS_WATCH_POLL_SECONDS": "soon"}, ["--watch"], "ALERTS_WATCH_POLL_SECONDS"),
        ({"ALERTS_WATCH_FIRST_FANOUT_ROWS": "0"}, ["--watch"], "ALERTS_WATCH_FIRST_FANOUT_ROWS"),
        ({"ALERTS_SENDER": "carrier-pigeon"}, ["--watch"], "ALERTS_SENDER"),
    ):
        result = run_runner(db_url, *args, env={"ALERTS_SENDER": "console", **env}, timeout=30)
        assert result.returncode == 2, (env, args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines


def test_watch_refuses_a_database_without_its_migration(conn, db_url, tmp_path):
    conn.execute("DROP FUNCTION alerts_watcher_register(text, text, integer)")
    result = run_runner(db_url, "--watch", env={"ALERTS_SENDER": f"file:{tmp_path / 'o.jsonl'}"}, timeout=30)
    assert result.returncode == 1
    assert "watch mode is not deployed" in result.stderr and "--migrate" in result.stderr


def test_a_burst_starts_sending_before_it_is_all_fanned_out(conn, db_url, tmp_path):
    seed.population(conn, users=400, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", ALERTS_WATCH_FANOUT_EVENTS="2")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at)"
                     " SELECT 'Burst ' || g, 'Europe', 'supply', 5, now() FROM generate_series(1, 10) g")
        wait_for(all_sent(conn, 4000), 60, "4,000 deliveries sent")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    first_line = min(json.loads(line)["written_at"] for line in outbox.read_text().splitlines())
    chunks, sent_before_last_chunk = conn.execute(
        "SELECT (SELECT count(DISTINCT created_at) FROM user_alert_deliveries),"  # one fanout statement each
        " %s::timestamptz < (SELECT max(fanout_completed_at) FROM alert_events)", [first_line]).fetchone()
    assert chunks == 5, f"10 events fanned out in {chunks} chunks, not 5 of 2"
    assert sent_before_last_chunk, "nothing was sent before the last chunk was fanned out"


def test_the_first_fanout_step_of_a_pass_is_small_and_its_messages_leave_before_the_next(conn, db_url, tmp_path):
    """One event for every user: the pass fans out ALERTS_WATCH_FIRST_FANOUT_ROWS pairs first and
    sends them before it fans out the rest (a full step for a large audience takes seconds)."""
    seed.population(conn, users=400, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", ALERTS_WATCH_FIRST_FANOUT_ROWS="100")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at)"
                     " VALUES ('Outage', 'Europe', 'supply', 5, now())")
        wait_for(all_sent(conn, 400), 60, "400 deliveries sent")
    finally:
        assert watcher.stop() == 3, watcher.stderr
    steps = conn.execute("SELECT created_at, count(*) FROM user_alert_deliveries"  # one fanout statement each
                         " GROUP BY 1 ORDER BY 1").fetchall()
    assert [count for _, count in steps] == [100, 300], steps
    first_line = min(json.loads(line)["written_at"] for line in outbox.read_text().splitlines())
    sent_first = conn.execute("SELECT min(sent_at) FROM user_alert_deliveries").fetchone()[0]
    assert conn.execute("SELECT %s::timestamptz < %s AND %s < %s",
                        [first_line, steps[1][0], sent_first, steps[1][0]]).fetchone()[0], \
        "the first step's messages did not leave before the second step"

