"""Run history: every real phase run through the runner opens an alerts_runs row and closes it
(ok, skipped or failed), even on failure. Phases called from psql are not recorded."""

import json
import logging
import time
from collections.abc import Callable

import psycopg

from alerts import metrics
from alerts.db import connect, one_line
from alerts.failures import history_text

log = logging.getLogger("alerts")


def recorded(url: str, conn: psycopg.Connection, phase: str,
             run: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run one phase between alerts_run_open() and alerts_run_close(), which only the secret the
    first returned can close."""
    row = conn.execute("SELECT run_id, secret FROM alerts_run_open(%s)", [phase]).fetchone()
    run_id, secret = (int(row[0]), str(row[1])) if row else (0, "")
    started = time.perf_counter()
    try:
        counts = run()
    except BaseException as error:
        metrics.phase_done(phase, None, time.perf_counter() - started)
        _close_failed(url, run_id, secret, history_text(error))
        raise
    error = run_error(counts)
    metrics.phase_done(phase, counts, time.perf_counter() - started, failed=error is not None)
    outcome = "skipped" if counts.get("skipped") is True else "failed" if error else "ok"
    finish = "SELECT alerts_run_close(%s, %s, %s, %s::jsonb, %s)"
    params = [run_id, secret, outcome, json.dumps(counts), error]
    try:
        conn.execute(finish, params)
    except psycopg.OperationalError:  # the run's connection went away meanwhile (a server restart)
        with connect(url) as fresh:
            fresh.execute(finish, params)
    return counts


def run_error(counts: dict[str, object]) -> str | None:
    """Why a run that returned its counts still failed, in one line; None when it did not.
    The runner exits non-zero for exactly these (runner.py)."""
    if counts.get("error"):
        return str(counts["error"])
    if counts.get("channels_not_configured"):
        return (f"deliveries stay queued for channels with no provider: {counts['channels_not_configured']} "
                "(see runner.py --preflight)")
    if counts.get("channels_unavailable"):
        return (f"a provider could not take messages, they stay queued for the next run: "
                f"{counts['channels_unavailable']}")
    return None


def _close_failed(url: str, run_id: int, secret: str, error: str) -> None:
    """On a fresh connection: the run's own may be the thing that broke."""
    try:
        with connect(url) as conn:
            conn.execute("SELECT alerts_run_close(%s, %s, 'failed', NULL, %s)", [run_id, secret, error])
    except Exception as close_error:  # the database is gone; the row stays 'running' as evidence
        log.warning("could not record the failure of run %s: %s", run_id, one_line(close_error))
