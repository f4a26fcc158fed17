"""Cron beside watchers: two `runner.py --watch` processes and a `runner.py --phase all` every half
second, while events keep arriving. The advisory locks and SKIP LOCKED claims keep every delivery
to exactly one message."""

import subprocess
import sys
import time

from tests import seed
from tests.conftest import ROOT
from tests.watchers import Watcher, all_sent, outbox_counts, wait_for, watcher_ready


def test_cron_every_half_second_beside_two_watchers_sends_each_delivery_once(conn, db_url, tmp_path):
    seed.population(conn, users=300, events=0, channels=("email", "telegram"))
    outbox = tmp_path / "outbox.jsonl"
    small_batches = {"ALERTS_BATCH_SIZE": "37"}  # many claims, so the claimers interleave
    watchers = [Watcher(db_url, tmp_path, f"w{n}", f"file:{outbox}", **small_batches) for n in (1, 2)]
    cron_env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": db_url, "ALERTS_SENDER": f"file:{outbox}",
                **small_batches}
    cron_runs: list[subprocess.CompletedProcess] = []
    try:
        wait_for(lambda: all(watcher_ready(conn, w.name)() for w in watchers), 30, "both watchers up")
        cron: subprocess.Popen | None = None
        for round_number in range(12):
            seed.event(conn, title=f"Round {round_number}", age="0 seconds")
            if cron is None or cron.poll() is not None:
                if cron is not None:
                    cron_runs.append(subprocess.CompletedProcess(cron.args, cron.returncode, *cron.communicate()))
                cron = subprocess.Popen([sys.executable, "runner.py", "--phase", "all"], cwd=ROOT, env=cron_env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
        assert cron is not None
        cron_runs.append(subprocess.CompletedProcess(cron.args, cron.wait(60), *cron.communicate()))
        wait_for(all_sent(conn, 12 * 300 * 2), 60, "7,200 deliveries sent")
    finally:
        for watcher in watchers:
            assert watcher.stop() == 3, watcher.stderr
    sent = outbox_counts(outbox)
    assert len(sent) == 7200 and max(sent.values()) == 1, "a delivery was sent twice"
    assert all(run.returncode == 0 for run in cron_runs), [run.stderr for run in cron_runs]
    assert conn.execute("SELECT count(*), count(DISTINCT event_fingerprint) FROM alert_events").fetchone() == (12, 12)
    senders = [w.name for w in watchers if "sent=" in w.stderr]
    assert len(cron_runs) >= 3 and senders, (len(cron_runs), senders)
    print(f"{len(cron_runs)} cron runs beside 2 watchers; watchers that sent: {senders}; 7,200 sent once each")
