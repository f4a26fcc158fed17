"""Watch mode under faults, with real processes: a watcher SIGKILLed mid-batch and restarted, and
the PostgreSQL server restarted mid-batch under a running watcher (a throwaway server, never the
shared one). Nothing is lost; the only messages sent twice are those the provider accepted after
the watcher last recorded outcomes (at most one batch), as for the cron runner."""

import os
import time
from pathlib import Path

import psycopg

from alerts import migrate
from devtools.embedded_pg import embedded_cluster
from tests import seed
from tests.watchers import (
    FAST_RECOVERY,
    StallingProvider,
    Watcher,
    all_sent,
    check_delivered,
    outbox_counts,
    wait_for,
)

BATCH = {"ALERTS_BATCH_SIZE": "500"}


def _population(conn: psycopg.Connection) -> None:
    seed.population(conn, users=600, events=0)
    conn.execute(FAST_RECOVERY)


def _in_flight(conn: psycopg.Connection) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sending'")}


def test_watcher_killed_mid_burst_and_restarted_loses_nothing(conn, db_url, tmp_path):
    _population(conn)
    fifo = tmp_path / "provider.fifo"
    os.mkfifo(fifo)
    provider = StallingProvider(fifo, accept_first=120)
    provider.start()
    first = Watcher(db_url, tmp_path, "w1", f"file:{fifo}", **BATCH)
    for n in range(2):
        seed.event(conn, title=f"Burst {n}", age="0 seconds")
    assert provider.stalled.wait(60), first.stderr
    time.sleep(0.5)  # the watcher fills the pipe and blocks in the middle of its first batch
    in_flight = _in_flight(conn)
    first.kill()
    provider.resume()
    provider.join(30)
    accepted = provider.ids()
    assert 0 < len(in_flight) <= 500 and len(set(accepted) & in_flight) >= 100

    outbox = tmp_path / "outbox.jsonl"
    second = Watcher(db_url, tmp_path, "w1", f"file:{outbox}", **BATCH)  # the same name: systemd's restart
    try:
        took = wait_for(all_sent(conn, 1200), 30, "every delivery sent after the restart")
    finally:
        assert second.stop() == 3, second.stderr
    duplicates = check_delivered(conn, accepted + outbox_counts(outbox), 1200, in_flight, accepted)
    print(f"killed with {len(in_flight)} in flight, {duplicates} of them already accepted and sent twice; "
          f"the restarted watcher finished in {took:.1f} s (lease 2 s)")


def test_server_restart_mid_burst_the_watcher_recovers_by_itself(tmp_path: Path):
    with embedded_cluster() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate.deploy(conn)
            _population(conn)
        fifo = tmp_path / "provider.fifo"
        os.mkfifo(fifo)
        provider = StallingProvider(fifo, accept_first=120)
        provider.start()
        watcher = Watcher(server.url, tmp_path, "w1", f"file:{fifo}", **BATCH)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                for n in range(2):
                    seed.event(conn, title=f"Burst {n}", age="0 seconds")
                assert provider.stalled.wait(60), watcher.stderr
                time.sleep(0.5)  # the watcher blocks in the middle of its first batch
                in_flight = _in_flight(conn)
            server.restart()
            provider.resume()  # the watcher writes the rest of its batch, then finds its connection gone
            with psycopg.connect(server.url, autocommit=True) as conn:
                took = wait_for(all_sent(conn, 1200), 60, "every delivery sent after the restart")
                # Phase C's work connection reconnects at once and may send everything before the
                # watcher's own connections notice: they come back on their backoff.
                wait_for(lambda: watcher.stderr.count("back after") >= 2, 60, "both connections back")
                assert watcher.proc.poll() is None, "the watcher exited instead of recovering"
        finally:
            assert watcher.stop() == 3, watcher.stderr
        provider.join(30)
        sent = provider.ids()  # once the watcher has stopped: every line written has been read
        with psycopg.connect(server.url, autocommit=True) as conn:
            duplicates = check_delivered(conn, sent, 1200, in_flight)
    log = watcher.stderr
    for connection in ("database connection to", "listen connection to"):
        lines = [line for line in log.splitlines() if connection in line]
        assert len(lines) == 2 and "lost" in lines[0] and "back after" in lines[1], log
    assert "Traceback" not in log
    print(f"server restarted with {len(in_flight)} in flight, {duplicates} sent twice, none lost; "
          f"all sent {took:.1f} s after the restart")
