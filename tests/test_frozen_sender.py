"""A sender frozen mid-batch (SIGSTOP: a VM that stops answering, a container freezer) holds up
nothing but its own claimed rows until their lease ends: the Phase C lock is shared, so the next
cron runs send beside it and reclaim its rows once their lease is over. Resumed, it sends none of
the rows whose lease ran out, and the outcomes it records for them change nothing (claim tokens)."""

import json
import os
import signal
import time
from collections import Counter

import psycopg

from tests import seed
from tests.conftest import run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.smtp_senders import smtp_env, start_sender

LEASE_SECONDS = 3


def _unfinished(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status NOT IN ('sent', 'failed')").fetchone()
    assert row is not None
    return int(row[0])


def test_a_frozen_sender_holds_up_only_its_own_rows_and_sends_none_of_them_when_resumed(conn, db_url):
    users = 60
    seed.population(conn, users=users, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    conn.execute(f"UPDATE alerts_config SET lease_duration = '{LEASE_SECONDS} seconds', "
                 "retry_base = '0.2 seconds', retry_max = '1 second', retry_jitter_pct = 0")
    with FakeSmtpServer() as smtp:
        smtp.handler.data_delay = 0.1
        frozen = start_sender(db_url, smtp, in_flight=2)
        os.kill(frozen.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        claimed_by_frozen = conn.execute(
            "SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'").fetchone()[0]
        try:
            runs = []
            while _unfinished(conn):  # cron goes on, one run every half second
                result = run_runner(db_url, "--phase", "c", env=smtp_env(smtp))
                assert result.returncode == 0, result.stderr
                runs.append(json.loads(result.stdout))
                assert time.monotonic() - frozen_at < LEASE_SECONDS + 60, "the queue was not emptied"
                time.sleep(0.5)
            emptied_after = time.monotonic() - frozen_at
            before_resume = len(smtp.messages)
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        out, err = frozen.communicate(timeout=60)
        sent_after_resume = len(smtp.messages) - before_resume
        sent_to = Counter(m.email["To"] for m in smtp.messages)
    assert not any(r.get("skipped") for r in runs), "a run skipped while the frozen sender held the lock"
    assert claimed_by_frozen > 0 and emptied_after < LEASE_SECONDS + 60
    counts = json.loads(out.splitlines()[-1])
    assert frozen.returncode == 0, err
    assert len(sent_to) == users, "a delivery was lost"
    duplicates = sum(n - 1 for n in sent_to.values())
    # What it had in flight when it froze: sent (or being sent) with no outcome recorded yet. Each
    # is recorded after the resume and found stale; nothing else goes out twice.
    assert duplicates <= counts["stale_sent"], (duplicates, counts)
    # Resumed, it finishes only the sends its two threads were in (ALERTS_CONCURRENCY_EMAIL) and
    # hands none of its expired rows to the provider.
    assert sent_after_resume <= 2, (sent_after_resume, counts)
    assert counts["lease_expired"] >= 1, counts
    assert counts["stale_outcomes"] >= counts["lease_expired"], counts
    assert "stale" in err
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone() == (users,)
