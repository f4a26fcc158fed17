"""Prometheus metrics as an operator sees them: a cron run's textfile (node_exporter's textfile
collector) and a watcher's /metrics, fetched over real HTTP, count what was sent, read the queue
from the database, and rise by an event's recipients when the watcher sends it."""

import json
import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests import seed
from tests.conftest import run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.watchers import Watcher, outbox_counts, wait_for, watcher_ready


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text: (name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def help_texts(text: str) -> dict[str, str]:
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def test_a_cron_run_writes_its_counts_and_the_queue_to_the_textfile(conn, db_url, tmp_path):
    seed.population(conn, users=4, events=1)
    seed.event(conn, title="Second outage")  # 8 deliveries; one address refused for good
    textfile = tmp_path / "alerts.prom"
    with FakeSmtpServer() as smtp:
        smtp.handler.refuse["u4@example.com"] = "550 5.1.1 No such user"
        result = run_runner(db_url, "--phase", "all", env={
            "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com",
            "ALERTS_METRICS_TEXTFILE": str(textfile), "ALERTS_MAX_SEND_PER_RUN": "5"})
        received = len(smtp.messages)
    assert result.returncode == 0, result.stderr
    phase_c = json.loads(result.stdout.splitlines()[-1])
    assert phase_c["sent"] == received == 4 and phase_c["failed"] == 1 and phase_c["stopped_early"] is True
    text = textfile.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.prom"]  # written through a renamed temporary file
    found = samples(text)
    assert value(found, "alerts_messages_total", channel="email", outcome="sent") == received
    assert value(found, "alerts_messages_total", channel="email", outcome="failed") == 1
    assert value(found, "alerts_provider_errors_total", channel="email", **{"class": "permanent"}) == 1
    assert value(found, "alerts_provider_request_duration_seconds_count", channel="email") == 5
    assert value(found, "alerts_rows_created_total", phase="a") == 2
    assert value(found, "alerts_rows_created_total", phase="b") == 8
    for phase in "abdc":
        assert value(found, "alerts_phase_runs_total", phase=phase, result="ok") == 1, phase
        assert value(found, "alerts_phase_duration_seconds_count", phase=phase) == 1
    # the gauges read the database when the file is written: 3 deliveries left for the next run
    assert value(found, "alerts_deliveries_due") == 3
    assert value(found, "alerts_deliveries_sending") == 0
    assert value(found, "alerts_database_up") == 1
    assert "that run's own count" in help_texts(text)["alerts_messages"]


def test_a_phase_skipped_on_its_lock_and_a_failed_run_are_counted(conn, db_url, tmp_path):
    seed.population(conn, users=2, events=1)
    conn.execute("SELECT pg_advisory_lock(alerts_lock_key('alerts_v2_phase_b'))")
    textfile = tmp_path / "b.prom"
    result = run_runner(db_url, "--phase", "b", env={"ALERTS_METRICS_TEXTFILE": str(textfile)})
    assert result.returncode == 0, result.stderr
    assert value(samples(textfile.read_text()), "alerts_phase_runs_total", phase="b", result="skipped") == 1
    conn.execute("SELECT pg_advisory_unlock(alerts_lock_key('alerts_v2_phase_b'))")
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    result = run_runner(db_url, "--phase", "c", env={  # email has no provider: its deliveries stay queued
        "ALERTS_METRICS_TEXTFILE": str(textfile), "TELEGRAM_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5P"})
    assert result.returncode == 1, result.stderr
    found = samples(textfile.read_text())
    assert value(found, "alerts_phase_runs_total", phase="c", result="failed") == 1
    assert value(found, "alerts_deliveries_due") == 2


def test_metrics_settings_are_checked_before_anything_runs(db_url, tmp_path):
    result = run_runner(db_url, "--phase", "a", env={"ALERTS_METRICS_TEXTFILE": str(tmp_path / "no" / "a.prom")})
    assert result.returncode == 2 and "does not exist" in result.stderr, result.stderr
    result = run_runner(db_url, "--watch", env={"ALERTS_SENDER": "console", "ALERTS_METRICS_PORT": "http"})
    assert result.returncode == 2 and "ALERTS_METRICS_PORT" in result.stderr, result.stderr


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def metrics_url(watcher: Watcher) -> str:
    """The address the watcher logged (it was given port 0: the kernel chose a free one)."""
    match = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", watcher.stderr)
    assert match, watcher.stderr
    return match.group(1)


def sent_by_email(url: str) -> float:
    return value(samples(scrape(url)), "alerts_messages_total", channel="email", outcome="sent") or 0.0


def test_a_watcher_serves_metrics_and_an_event_raises_sent_by_its_recipients(conn, db_url, tmp_path):
    seed.population(conn, users=6, events=0)
    outbox = tmp_path / "outbox.jsonl"
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", ALERTS_METRICS_PORT="0")
    try:
        wait_for(watcher_ready(conn, "w1"), 30, "the watcher made its first pass")
        url = metrics_url(watcher)
        first = samples(scrape(url))
        assert value(first, "alerts_deliveries_due") == 0 and value(first, "alerts_database_up") == 1
        assert value(first, "alerts_watcher_last_heartbeat_timestamp_seconds", watcher="w1") is not None
        assert (value(first, "alerts_phase_runs_total", phase="c", result="ok") or 0) >= 1
        before = sent_by_email(url)
        seed.event(conn, title="Probe", age="0 seconds")  # the probe: an event for the 6 subscribers
        wait_for(lambda: sent_by_email(url) >= before + 6, 20, "the sent counter raised by 6")
        wait_for(lambda: sum(outbox_counts(outbox).values()) == 6, 10, "6 outbox lines")
        assert sent_by_email(url) == before + 6
        assert sum(outbox_counts(outbox).values()) == 6
        created = value(samples(scrape(url)), "alerts_rows_created_total", phase="b")
        assert created == 6
    finally:
        assert watcher.stop() == 3, watcher.stderr


def test_the_queue_gauges_say_when_the_database_is_unreadable(db_url, tmp_path):
    """A scrape never fails for the database: alerts_database_up is 0 and the process's counters remain."""
    bad_url = re.sub(r"/[^/]*$", "/no_such_database_here", db_url)
    textfile = tmp_path / "down.prom"
    result = run_runner(bad_url, "--phase", "a", env={"ALERTS_METRICS_TEXTFILE": str(textfile)})
    assert result.returncode == 1
    found = samples(textfile.read_text())
    assert value(found, "alerts_database_up") == 0
    assert value(found, "alerts_deliveries_due") is None



def test_a_phase_that_raises_in_a_watcher_is_counted_failed(conn, db_url, tmp_path):
    conn.execute("CREATE OR REPLACE FUNCTION alerts_phase_d() RETURNS jsonb LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'digest gathering broken'; END $$")
    watcher = Watcher(db_url, tmp_path, "w1", f"file:{tmp_path / 'outbox.jsonl'}", ALERTS_METRICS_PORT="0")
    try:
        wait_for(lambda: "metrics on http" in watcher.stderr, 30, "the metrics server started")
        url = metrics_url(watcher)
        wait_for(lambda: (value(samples(scrape(url)), "alerts_phase_runs_total", phase="d", result="failed") or 0) >= 1,
                 30, "phase d counted failed")
        found = samples(scrape(url))
        assert (value(found, "alerts_phase_runs_total", phase="a", result="ok") or 0) >= 1
        assert value(found, "alerts_phase_last_success_timestamp_seconds", phase="d") is None
    finally:
        assert watcher.stop() == 3, watcher.stderr
