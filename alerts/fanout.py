"""Phase B in bounded steps: each alerts_phase_b(max_events, max_rows) call is its own transaction
and considers at most max_rows (event, user) pairs, so a backlog of any size makes progress under a
DBA's statement_timeout. A step cancelled by the timeout changed nothing; the budget is halved for
the rest of the run and the step tried again, down to one pair."""

import logging

import psycopg

from alerts.counts import merge_counts
from alerts.failures import halved_after_timeout, retry_transient

log = logging.getLogger("alerts")

STEP_SQL = "SELECT alerts_phase_b(%s::integer, %s::integer)"


class FanoutBudget:
    """The row budget of this run's Phase B steps: alerts_config.fanout_chunk_rows until a step is
    cancelled by a statement timeout, then half of it each time."""

    def __init__(self) -> None:
        self.rows: int | None = None  # None: the configured budget, which the server applies

    def shrink(self, conn: psycopg.Connection, error: psycopg.errors.QueryCanceled) -> None:
        """Halve the budget, or re-raise when it was no statement timeout or a single pair timed out."""
        current = self.rows if self.rows is not None else _configured_rows(conn)
        self.rows = halved_after_timeout(error, current, "phase b (event-user pairs)")


def _configured_rows(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT alerts_fanout_chunk_rows()").fetchone()
    return int(row[0]) if row and row[0] is not None else 1


def fan_out_step(conn: psycopg.Connection, budget: FanoutBudget, max_events: int | None = None,
                 max_rows: int | None = None) -> dict[str, object]:
    """One bounded step (of at most max_rows pairs when given, never more than the budget); a
    statement timeout shrinks the budget and tries again, a deadlock or a serialization failure is
    tried again as it is."""
    while True:
        rows = budget.rows if max_rows is None else \
            min(max_rows, budget.rows if budget.rows is not None else _configured_rows(conn))
        try:
            row = retry_transient(conn, "phase b",
                                  lambda rows=rows: conn.execute(STEP_SQL, [max_events, rows]).fetchone())
        except psycopg.errors.QueryCanceled as error:
            if not conn.autocommit:
                raise  # inside a caller's transaction (a dry run) the step cannot be tried again
            budget.shrink(conn, error)
            continue
        assert row is not None
        counts: dict[str, object] = row[0]
        return counts


def fan_out(conn: psycopg.Connection, budget: FanoutBudget | None = None,
            max_events: int | None = None) -> dict[str, object]:
    """Steps until nothing is left to fan out or another session holds Phase B's lock; the counts
    added up, with "steps" and the row budget the run ended with."""
    budget = budget or FanoutBudget()
    total: dict[str, object] = {}
    steps = 0
    while True:
        counts = fan_out_step(conn, budget, max_events)
        if counts.get("skipped") is True and steps:
            break  # another run took the lock between two steps: it goes on from here
        total = merge_counts(total, counts)
        steps += 1
        if counts.get("skipped") is True or counts.get("done", True) is True:
            break
    if total.get("skipped") is not True:
        total["steps"] = steps
    if budget.rows is not None:
        total["max_rows"] = budget.rows
    return total
