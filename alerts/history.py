"""Run history: every real phase run opens an alerts_runs row and closes it, even on failure."""

import json
import logging
from collections.abc import Callable

import psycopg

from alerts.db import connect, one_line

log = logging.getLogger("alerts")


def recorded(url: str, conn: psycopg.Connection, phase: str,
             run: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run one phase between alerts_run_started() and alerts_run_finished()."""
    row = conn.execute("SELECT alerts_run_started(%s)", [phase]).fetchone()
    run_id = int(row[0]) if row else 0
    try:
        counts = run()
    except BaseException as error:
        _close_failed(url, run_id, f"{type(error).__name__}: {one_line(error)}")
        raise
    outcome = "skipped" if counts.get("skipped") is True else "ok"
    conn.execute("SELECT alerts_run_finished(%s, %s, %s::jsonb, NULL)", [run_id, outcome, json.dumps(counts)])
    return counts


def _close_failed(url: str, run_id: int, error: str) -> None:
    """On a fresh connection: the run's own may be the thing that broke."""
    try:
        with connect(url) as conn:
            conn.execute("SELECT alerts_run_finished(%s, 'failed', NULL, %s)", [run_id, error])
    except Exception as close_error:  # the database is gone; the row stays 'running' as evidence
        log.warning("could not record the failure of run %s: %s", run_id, one_line(close_error))
