"""What a database failure was: one classifier from the SQLSTATE, one line per kind saying what
happened and what to do, an exit code per kind, and the bounded retry of the transient ones.

psycopg raises OperationalError for a lost connection and also for a statement timeout, a lock
timeout, a cancel, a deadlock, a serialization failure and a backend ended by the server or a
DBA; the runner reports each for what it is (docs/operations.md, "When a run fails")."""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from alerts.db import one_line
from alerts.errors import EXIT_CONNECTION_ENDED, EXIT_FAILURE, EXIT_STATEMENT_STOPPED, AlertsError

log = logging.getLogger("alerts")

T = TypeVar("T")

TRANSIENT_ATTEMPTS = 3  # tries of a phase's stored-function call that hit a deadlock or serialization failure
BACKOFF_FIRST_SECONDS = 0.05  # before the second try 50-100 ms, before the third 100-200 ms
_ATTEMPTS = "alerts_attempts"  # set on an error by retry_transient(): how many tries it took
_RESUMES = "nothing is lost; claimed rows come back when their lease ends and the next run resumes"
_GOES_ON = "nothing is lost: what was committed before stays and the next run goes on from there"


@dataclass(frozen=True)
class FailureKind:
    """A kind of database failure: a stable name (the first word of the error line and of
    alerts_runs.error), whether it is retried within the run, its exit code, and what to say."""

    name: str
    transient: bool
    exit_code: int
    what: str  # what happened, then "(<server message>)" is added
    todo: str  # what it means and what to do


STATEMENT_TIMEOUT = FailureKind(
    "statement_timeout", False, EXIT_STATEMENT_STOPPED,
    "the database's statement_timeout canceled the statement",
    f"{_GOES_ON}; if it keeps happening, raise it for the runner's role, e.g. "
    "ALTER ROLE <DATABASE_URL's user> SET statement_timeout = '5min'")
QUERY_CANCELED = FailureKind(
    "query_canceled", False, EXIT_STATEMENT_STOPPED,
    "a DBA or another process canceled the statement with pg_cancel_backend", _GOES_ON)
LOCK_TIMEOUT = FailureKind(
    "lock_timeout", False, EXIT_STATEMENT_STOPPED,
    "another session held a lock the statement needed for longer than the database's lock_timeout",
    f"{_GOES_ON}; if it keeps happening, find the blocker (pg_blocking_pids() in pg_stat_activity) "
    "or raise lock_timeout for the runner's role")
DEADLOCK = FailureKind(
    "deadlock", True, EXIT_STATEMENT_STOPPED,
    "the database ended the statement to break a deadlock with another session",
    f"{_GOES_ON}; if it keeps happening, look for another job locking the alert tables")
SERIALIZATION_FAILURE = FailureKind(
    "serialization_failure", True, EXIT_STATEMENT_STOPPED,
    "a concurrent transaction changed what the statement read",
    f"{_GOES_ON}; if it keeps happening, look for another job writing the alert tables")
ADMIN_SHUTDOWN = FailureKind(
    "admin_shutdown", False, EXIT_CONNECTION_ENDED,
    "the server or a DBA ended the runner's database session: a shutdown, restart or pg_terminate_backend",
    _RESUMES)
CONNECTION_LOST = FailureKind(
    "connection_lost", False, EXIT_CONNECTION_ENDED, "lost the database connection", _RESUMES)
DATABASE_ERROR = FailureKind(
    "database_error", False, EXIT_FAILURE, "the database failed the statement",
    "see the server's log; nothing is lost, the next run tries again")

KINDS = (STATEMENT_TIMEOUT, QUERY_CANCELED, LOCK_TIMEOUT, DEADLOCK, SERIALIZATION_FAILURE, ADMIN_SHUTDOWN,
         CONNECTION_LOST, DATABASE_ERROR)
_BY_SQLSTATE = {"55P03": LOCK_TIMEOUT, "40P01": DEADLOCK, "40001": SERIALIZATION_FAILURE,
                "57P01": ADMIN_SHUTDOWN, "57P02": ADMIN_SHUTDOWN, "57P03": ADMIN_SHUTDOWN}


def classify(error: BaseException) -> FailureKind | None:
    """The kind of a psycopg.OperationalError, read from its SQLSTATE; None for anything else."""
    if not isinstance(error, psycopg.OperationalError):
        return None
    sqlstate = error.sqlstate
    if sqlstate is None or sqlstate.startswith("08"):
        return CONNECTION_LOST
    if sqlstate == "57014":  # statement_timeout and a cancel share it; only the message tells them apart
        return STATEMENT_TIMEOUT if "statement timeout" in _primary(error) else QUERY_CANCELED
    return _BY_SQLSTATE.get(sqlstate, DATABASE_ERROR)


def _primary(error: psycopg.Error) -> str:
    return error.diag.message_primary or str(error)


def _server_text(error: BaseException, kind: FailureKind) -> str:
    """The server's message in one line (masked), with the SQLSTATE where the kind does not say it,
    and how many tries a retried call took."""
    text = one_line(error)
    sqlstate = getattr(error, "sqlstate", None)
    if kind is DATABASE_ERROR and sqlstate:
        text = f"SQLSTATE {sqlstate}: {text}"
    attempts = getattr(error, _ATTEMPTS, 1)
    return f"{text}; tried {attempts} times, then gave up" if attempts > 1 else text


def describe(error: BaseException) -> str:
    """The one line an operator reads: '<kind>: <what happened> (<server message>): <what to do>'."""
    kind = classify(error)
    if kind is None:
        return f"{type(error).__name__}: {one_line(error)}"
    return f"{kind.name}: {kind.what} ({_server_text(error, kind)}): {kind.todo}"


def history_text(error: BaseException) -> str:
    """What alerts_runs.error records for a failed run: '<kind>: <server message>'."""
    kind = classify(error)
    if kind is None:
        return f"{type(error).__name__}: {one_line(error)}"
    return f"{kind.name}: {_server_text(error, kind)}"


def kind_named(text: str) -> FailureKind | None:
    """The kind a failure text (describe(), history_text()) starts with, if any."""
    name = text.split(":", 1)[0]
    return next((kind for kind in KINDS if kind.name == name), None)


def failure_from_text(text: str) -> AlertsError:
    """An AlertsError for a run that returned counts with this error text, with its kind's exit code."""
    failure = AlertsError(text)
    kind = kind_named(text)
    if kind is not None:
        failure.exit_code = kind.exit_code
    return failure


def retry_transient(conn: psycopg.Connection, what: str, call: Callable[[], T]) -> T:
    """call(), tried again up to TRANSIENT_ATTEMPTS times in all when it fails with a deadlock or a
    serialization failure, after a growing, jittered pause, with one log line per retry. Only on an
    autocommit connection, where each call is a transaction of its own: in an open transaction
    (a dry run) the failed call aborted everything before it, so the error goes up at once."""
    attempts = TRANSIENT_ATTEMPTS if conn.autocommit else 1
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except psycopg.OperationalError as error:
            kind = classify(error)
            if kind is None or not kind.transient or attempt == attempts:
                setattr(error, _ATTEMPTS, attempt)
                raise
            pause = random.uniform(1.0, 2.0) * BACKOFF_FIRST_SECONDS * 2 ** (attempt - 1)
            log.warning("%s: %s (%s), try %s of %s; trying again in %.2f s", what, kind.name, one_line(error),
                        attempt, attempts, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def halved_after_timeout(error: psycopg.Error, current: int, what: str) -> int:
    """The batch to try again with after a statement the database's statement_timeout canceled:
    half of current; anything else (a cancel by hand, a batch of one that still timed out) is
    raised again. A canceled statement changed nothing, so trying again is safe."""
    if classify(error) is not STATEMENT_TIMEOUT or current <= 1:
        raise error
    smaller = max(current // 2, 1)
    log.warning("%s: a batch of %s was canceled by the statement_timeout (%s); going on with %s a batch",
                what, current, one_line(error), smaller)
    return smaller
