"""The pause switch: a DBA who takes Phase C's lock exclusively stops all sending. A run that starts
meanwhile skips (exit 0); a run already sending stops claiming within about a second, records what
it sent (fenced by its claim tokens), releases the rest and ends with "paused": true (exit 0); once
the DBA lets go, the next run sends the rest, and nothing goes out twice."""

import json
import time
from collections import Counter

import psycopg

from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests import seed
from tests.conftest import run_runner
from tests.fakes.smtp_server import FakeSmtpServer
from tests.smtp_senders import smtp_env, start_sender


def test_an_exclusive_holder_pauses_every_sender_and_nothing_is_lost_or_sent_twice(conn, db_url):
    users = 80
    seed.population(conn, users=users, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    key = lock_key(PHASE_LOCK_NAMES["c"])
    with FakeSmtpServer() as smtp, psycopg.connect(db_url, autocommit=True) as dba:
        smtp.handler.data_delay = 0.1  # 2 at a time: 80 messages take 4 s
        sending = start_sender(db_url, smtp, in_flight=2)
        dba.execute("SELECT pg_advisory_lock(%s)", [key])  # pause
        paused_at = time.monotonic()
        during_pause = run_runner(db_url, "--phase", "c", env=smtp_env(smtp))
        out, err = sending.communicate(timeout=30)
        stopped_after = time.monotonic() - paused_at
        sent_while_paused = len(smtp.messages)
        time.sleep(0.5)
        assert len(smtp.messages) == sent_while_paused, "a message went out while sending was paused"
        dba.execute("SELECT pg_advisory_unlock(%s)", [key])  # resume
        after = run_runner(db_url, "--phase", "c", env=smtp_env(smtp))
        sent_to = Counter(m.email["To"] for m in smtp.messages)
    assert during_pause.returncode == 0, during_pause.stderr
    assert json.loads(during_pause.stdout) == {"phase": "c", "locked": False, "skipped": True,
                                               "reason": "lock_not_acquired"}
    assert sending.returncode == 0, err
    counts = json.loads(out.splitlines()[-1])
    assert counts["paused"] is True and "sending paused" in err, (counts, err)
    assert counts["sent"] < users and stopped_after < 5, (counts, stopped_after)
    assert after.returncode == 0, after.stderr
    assert len(sent_to) == users, "a delivery was lost"
    assert sum(n - 1 for n in sent_to.values()) == 0, "a message was sent twice"
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone() == (users,)
