"""A Phase C worker for the send case, started twice by bench/run.py.

    python -m bench.worker engine|bare DATABASE_URL BATCH OUTBOX

Connects, prints "ready", waits for a line on stdin (so both workers start together and
neither's start-up is timed), then drains the queue and prints one JSON line:
{"rows": n, "started": t0, "finished": t1} (time.time()).

engine: alerts.phases.deliver() with a FileOutboxSender, without the runner's advisory lock
        (as tests/claim_worker.py), so two workers claim side by side.
bare:   the baseline: one statement per batch that claims with FOR UPDATE SKIP LOCKED over the
        same queue index and marks the rows sent.
"""

import json
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from alerts.delivery import Database, deliver
from alerts.senders.file_outbox import FileOutboxSender

BARE_CLAIM_AND_COMPLETE = """
WITH due AS (
    SELECT d.id FROM user_alert_deliveries d
     WHERE d.status = 'queued' AND d.delivery_kind = 'instant'
       AND coalesce(d.next_retry_at, d.created_at) <= now()
     ORDER BY coalesce(d.next_retry_at, d.created_at), d.id
     LIMIT %s
       FOR UPDATE SKIP LOCKED
)
UPDATE user_alert_deliveries d SET status = 'sent', sent_at = now()
  FROM due WHERE d.id = due.id
"""


def run_engine(conn: psycopg.Connection, batch: int, outbox: Path) -> dict[str, int]:
    sender = FileOutboxSender(outbox)
    try:
        counts = deliver(Database(conn.info.dsn, conn), sender, batch, 10**12)
    finally:
        sender.close()
    return {"rows": int(counts.sent), "claimed": int(counts.claimed), "batches": int(counts.batches)}


def run_bare(conn: psycopg.Connection, batch: int) -> int:
    done = 0
    while True:
        changed = conn.execute(BARE_CLAIM_AND_COMPLETE, [batch]).rowcount
        if changed <= 0:
            return done
        done += changed


def main(mode: str, url: str, batch: int, outbox: Path) -> None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, application_name=f"bench_{mode}") as conn:
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        report = run_engine(conn, batch, outbox) if mode == "engine" else {"rows": run_bare(conn, batch)}
        finished = time.time()
    print(json.dumps({**report, "started": started, "finished": finished}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
