"""A Phase C worker that claims side by side with others: the tests start four to show each
delivery goes out once (tests/test_phase_c.py), the bench starts two to time Phase C against a
bare SQL loop (bench/cases.py).

    python -m devtools.claim_worker engine|bare|sql DATABASE_URL BATCH OUTBOX

Connects, prints "ready", waits for a line on stdin (so all workers start together and no
start-up is timed), then drains the queue and prints one JSON line:
{"rows": sent, "claimed": n, "batches": n, "started": t0, "finished": t1} (time.time(); engine
mode alone reports claimed and batches).

engine: alerts.delivery.deliver() with a FileOutboxSender, without the runner's advisory lock,
        so several workers claim at once.
bare:   the baseline: one statement per batch that claims with FOR UPDATE SKIP LOCKED over the
        same queue index and marks the rows sent.
sql:    the engine's own statements alone: its claim (alerts.delivery.DELIVERIES.claim) and
        mark_deliveries_sent per batch, no message built or written: what the SQL protocol costs
        (two writes per delivery) before any Python per message.
"""

import json
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from alerts.delivery import DELIVERIES, Database, deliver
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


def run_sql(conn: psycopg.Connection, batch: int) -> int:
    done = 0
    while rows := conn.execute(DELIVERIES.claim, [batch, None]).fetchall():
        ids, tokens = [r["delivery_id"] for r in rows], [r["claim_token"] for r in rows]
        details = [f"file:delivery:{i}:1" for i in ids]
        done += int(conn.execute(DELIVERIES.mark_sent, [ids, tokens, details]).fetchone()["mark_deliveries_sent"])
    return done


def main(mode: str, url: str, batch: int, outbox: Path) -> None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, application_name=f"bench_{mode}") as conn:
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        report = run_engine(conn, batch, outbox) if mode == "engine" else \
            {"rows": run_sql(conn, batch) if mode == "sql" else run_bare(conn, batch)}
        finished = time.time()
    print(json.dumps({**report, "started": started, "finished": finished}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
