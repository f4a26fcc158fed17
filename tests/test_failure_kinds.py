"""Each kind of database failure, provoked for real against the server while the runner's phase
waits on a lock held by the test: the runner's one error line (its kind first), its exit code,
and the failed alerts_runs row whose error starts with the kind. Deadlocks and serialization
failures of a phase's call are tried again: once, and the run succeeds; every time, and it gives up."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from alerts.failures import DATABASE_ERROR, classify, describe, history_text
from tests import seed
from tests.conftest import ROOT
from tests.watchers import wait_for

# pg_blocking_pids(), not only wait_event_type: the latter may still say 'Lock' just after the lock was granted
WAITING_PHASE = (
    "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'alerts_v2_runner' AND query LIKE %s AND cardinality(pg_blocking_pids(pid)) > 0")
RETRY_LINE = "trying again"


def _set_for_database(conn: psycopg.Connection, setting: str, value: str) -> None:
    """A DBA's setting for every new session of the test's database, the runner's included."""
    conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
        sql.Identifier(conn.info.dbname), sql.Identifier(setting), sql.Literal(value)))


def _start(db_url: str, *args: str, **settings: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update(DATABASE_URL=db_url, **settings)
    return subprocess.Popen([sys.executable, str(ROOT / "runner.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(runner: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = runner.communicate(timeout=60)
    return runner.returncode, out, err


def _waiting_runner(conn: psycopg.Connection, call: str = "SELECT alerts_phase_a()") -> tuple[int, list[int]]:
    """The pid of the runner's backend once its call waits on a lock, and the pids it waits for."""
    found: list[tuple[int, list[int]]] = []
    wait_for(lambda: bool(found.extend(conn.execute(WAITING_PHASE, [call + "%"]).fetchall()) or found), 30,
             f"the runner's {call} waiting on a lock")
    return found[0]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("runner.py: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _runs(conn: psycopg.Connection) -> list[tuple[str, str, str | None]]:
    return conn.execute("SELECT phase, status, error FROM alerts_runs ORDER BY id").fetchall()


@contextmanager
def _holding(db_url: str, *statements: str) -> Iterator[psycopg.Connection]:
    """A session in an open transaction holding the locks statements take; rolled back at the end.
    Its deadlock_timeout is long, so in a deadlock the runner's backend is the one the server ends."""
    with psycopg.connect(db_url) as holder:
        holder.execute("SET deadlock_timeout = '20s'")
        for statement in statements:
            holder.execute(statement)
        try:
            yield holder
        finally:
            holder.rollback()


def _deadlock_rounds(conn: psycopg.Connection, holder: psycopg.Connection, *statements: str) -> None:
    """For each statement: once the runner's phase waits on the holder, the holder asks for a lock the
    phase holds. The server ends the phase's statement to break the deadlock, and the holder gets it."""
    for statement in statements:
        _waiting_runner(conn)
        holder.execute(statement)


def test_a_statement_timeout_is_named_with_the_setting_to_raise(conn, db_url):
    seed.event(conn)
    _set_for_database(conn, "statement_timeout", "1s")
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE"):
        code, out, err = _finish(_start(db_url, "--phase", "a"))
    assert code == 5, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: statement_timeout: the database's statement_timeout canceled"), line
    assert "nothing is lost" in line and "ALTER ROLE" in line and "SET statement_timeout" in line, line
    assert RETRY_LINE not in err
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed") and run[2] == "statement_timeout: canceling statement due to statement timeout"


def test_a_lock_timeout_says_another_session_held_the_lock(conn, db_url):
    seed.event(conn)
    _set_for_database(conn, "lock_timeout", "300ms")
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE"):
        code, out, err = _finish(_start(db_url, "--phase", "a"))
    assert code == 5, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: lock_timeout: another session held a lock"), line
    assert "pg_blocking_pids" in line and RETRY_LINE not in err, err
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed") and run[2] == "lock_timeout: canceling statement due to lock timeout", run


def test_a_dba_canceling_the_phase_is_not_called_a_timeout(conn, db_url):
    seed.event(conn)
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE"):
        runner = _start(db_url, "--phase", "a")
        conn.execute("SELECT pg_cancel_backend(%s)", [_waiting_runner(conn)[0]])
        code, out, err = _finish(runner)
    assert code == 5, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: query_canceled: a DBA or another process canceled the statement"), line
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed") and run[2] == "query_canceled: canceling statement due to user request", run


def test_a_backend_terminated_by_a_dba_is_an_admin_shutdown(conn, db_url):
    seed.event(conn)
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE"):
        runner = _start(db_url, "--phase", "a")
        conn.execute("SELECT pg_terminate_backend(%s)", [_waiting_runner(conn)[0]])
        code, out, err = _finish(runner)
    assert code == 6, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: admin_shutdown: the server or a DBA ended the runner's database "
                           "session"), line
    assert "nothing is lost" in line, line
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed"), run
    assert run[2] == "admin_shutdown: terminating connection due to administrator command", run


class CuttingProxy:
    """A TCP proxy to the server whose open connections can be cut, as a broken network would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        sockets, self.sockets = self.sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_connection_cut_mid_phase_is_a_lost_connection_and_no_password_shows(conn, db_url):
    seed.event(conn)
    parts = urlsplit(db_url)
    proxy = CuttingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    password = "pw-Zq81-never-shown"  # the server trusts the test role and never asks for it
    through_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@127.0.0.1:{proxy.port}"))
    try:
        with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE"):
            runner = _start(through_proxy, "--phase", "a")
            _waiting_runner(conn)
            proxy.cut()
            code, out, err = _finish(runner)
    finally:
        proxy.close()
    assert code == 6, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: connection_lost: lost the database connection"), line
    assert "nothing is lost" in line, line
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed") and run[2].startswith("connection_lost: "), run
    assert password not in err + out + str(run)


def test_a_deadlock_once_is_tried_again_and_the_run_succeeds(conn, db_url):
    seed.event(conn)
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE") as holder:
        runner = _start(db_url, "--phase", "a")
        _deadlock_rounds(conn, holder, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    code, out, err = _finish(runner)
    assert code == 0, err
    retries = [line for line in err.splitlines() if RETRY_LINE in line]
    assert len(retries) == 1 and "phase a: deadlock (deadlock detected), try 1 of 3" in retries[0], err
    assert _runs(conn) == [("a", "ok", None)]
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (1,)


# Each round the phase waits on a lock the holder took in the round before, so it waits earlier:
# on alert_events (held from the start), then on events, then on alerts_config; each time the
# holder asks for something the phase took before it waited.
THREE_DEADLOCKS = ("LOCK TABLE events IN ACCESS EXCLUSIVE MODE", "LOCK TABLE alerts_config IN ACCESS EXCLUSIVE MODE",
                   "SELECT pg_advisory_xact_lock(alerts_lock_key('alerts_v2_phase_a'))")


def test_a_deadlock_every_time_gives_up_after_three_tries(conn, db_url):
    seed.event(conn)
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE") as holder:
        runner = _start(db_url, "--phase", "a")
        _deadlock_rounds(conn, holder, *THREE_DEADLOCKS)
        code, out, err = _finish(runner)
    assert code == 5, err
    assert [line.split(" try ")[1][:6] for line in err.splitlines() if RETRY_LINE in line] == ["1 of 3", "2 of 3"], err
    line = _error_line(err)
    assert line.startswith("runner.py: error: deadlock: the database ended the statement to break a deadlock"), line
    assert "tried 3 times, then gave up" in line, line
    (run,) = _runs(conn)
    assert run == ("a", "failed", "deadlock: deadlock detected; tried 3 times, then gave up"), run


def test_a_dry_run_is_not_tried_again_after_a_deadlock(conn, db_url):
    """A dry run is one transaction: the deadlock aborted it, so there is nothing to try again in."""
    seed.event(conn)
    with _holding(db_url, "LOCK TABLE alert_events IN SHARE MODE") as holder:
        runner = _start(db_url, "--phase", "a", "--dry-run")
        _deadlock_rounds(conn, holder, THREE_DEADLOCKS[0])
        holder.rollback()
        code, out, err = _finish(runner)
    assert code == 5, err
    assert _error_line(err).startswith("runner.py: error: deadlock: "), err
    assert RETRY_LINE not in err and _runs(conn) == []


def test_serialization_failures_are_tried_again_then_given_up(conn, db_url):
    """Under a database default of REPEATABLE READ, Phase A's INSERT ... ON CONFLICT DO NOTHING that
    meets an alert committed after its snapshot fails with 40001. Three sessions each hold one such
    alert uncommitted; each try of the phase waits on one of them, which then commits."""
    events = [seed.event(conn, title=f"Event {n}") for n in range(3)]
    _set_for_database(conn, "default_transaction_isolation", "repeatable read")
    writers = [psycopg.connect(db_url) for _ in events]
    try:
        for writer, event_id in zip(writers, events, strict=True):
            writer.execute("INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint) "
                           "VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'written elsewhere', %s)",
                           [f"HIGH_IMPACT_EVENT:{event_id}"])
        by_pid = {writer.info.backend_pid: writer for writer in writers}
        runner = _start(db_url, "--phase", "a")
        for _ in events:
            _, (blocker,) = _waiting_runner(conn)
            by_pid[blocker].commit()
        code, out, err = _finish(runner)
    finally:
        for writer in writers:
            writer.close()
    assert code == 5, err
    assert sum(RETRY_LINE in line and "phase a: serialization_failure" in line for line in err.splitlines()) == 2, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: serialization_failure: a concurrent transaction changed"), line
    assert "tried 3 times, then gave up" in line, line
    (run,) = _runs(conn)
    assert run[:2] == ("a", "failed"), run
    assert run[2].startswith("serialization_failure: could not serialize access") and run[2].endswith(
        "; tried 3 times, then gave up"), run


def test_phase_c_names_the_kind_in_its_counts_its_exit_code_and_its_run(conn, db_url, tmp_path):
    """Phase C's claim waits on alert_events (its join) until the statement_timeout: the run reports
    its counts with the error, exits with the kind's code and records it."""
    seed.population(conn, users=2, events=1, channels=("email",))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    _set_for_database(conn, "statement_timeout", "1s")
    with _holding(db_url, "LOCK TABLE alert_events IN ACCESS EXCLUSIVE MODE"):
        code, out, err = _finish(_start(db_url, "--phase", "c", ALERTS_SENDER=f"file:{tmp_path / 'outbox.jsonl'}"))
    assert code == 5, err
    line = _error_line(err)
    assert line.startswith("runner.py: error: statement_timeout: "), line
    assert '"error": "statement_timeout: ' in out, out
    (run,) = _runs(conn)
    assert run[:2] == ("c", "failed") and run[2].startswith("statement_timeout: the database's statement_timeout"), run
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'").fetchone() == (2,)



def test_another_server_failure_is_a_database_error_with_its_sqlstate(conn):
    """Not every OperationalError is a lost connection: class 55 (here 55000) is one too."""
    with pytest.raises(psycopg.OperationalError) as caught:
        conn.execute("SELECT currval('alerts_claim_token_seq')")
    assert classify(caught.value) is DATABASE_ERROR and DATABASE_ERROR.exit_code == 1
    assert describe(caught.value).startswith("database_error: the database failed the statement (SQLSTATE 55000: "
                                             "currval of sequence")
    assert history_text(caught.value).startswith("database_error: SQLSTATE 55000: currval of sequence")
