"""A Phase C worker without the runner's advisory lock, so several can claim at once.

    python -m tests.claim_worker DATABASE_URL OUTBOX BATCH START_AT_EPOCH

Waits until START_AT_EPOCH so that all workers start claiming together, then
claims, sends into the outbox and records until nothing is due.
"""

import json
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from alerts.delivery import Database, deliver
from alerts.senders.file_outbox import FileOutboxSender


def main(url: str, outbox: str, batch: int, start_at: float) -> None:
    sender = FileOutboxSender(Path(outbox))
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        time.sleep(max(0.0, start_at - time.time()))
        counts = deliver(Database(url, conn), sender, batch, max_send=10**9)
    sender.close()
    print(json.dumps({"claimed": counts.claimed, "sent": counts.sent, "batches": counts.batches}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
