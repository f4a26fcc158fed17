"""Fixtures: a real PostgreSQL server, a deployed template database, a fresh database per test.

The server (tests/dbtools.py) is chosen and checked once, after collection and before the
first test, and only when a collected test needs it; a server that does not answer stops the
run with one line. A throwaway server is stopped and deleted when the run ends, also when the
run fails or is interrupted (Ctrl-C, SIGTERM)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import psycopg
import pytest

from alerts import migrate
from tests.dbtools import ClonePool, NoTestDatabase, create_database, drop_database, server_url, with_database

ROOT = Path(__file__).resolve().parent.parent

SERVER_URL = pytest.StashKey[str]()
SERVER_STACK = pytest.StashKey[ExitStack]()


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM unwinds like Ctrl-C, so a throwaway server is stopped and deleted."""
    config.stash[SERVER_STACK] = ExitStack()
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start (or check) the server once, before the first test, if any collected test needs it."""
    if config.option.collectonly or not any("admin_url" in getattr(item, "fixturenames", ()) for item in items):
        return
    try:
        config.stash[SERVER_URL] = config.stash[SERVER_STACK].enter_context(server_url())
    except NoTestDatabase as error:
        raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    if SERVER_STACK in config.stash:
        config.stash[SERVER_STACK].close()


@pytest.fixture(scope="session")
def admin_url(pytestconfig: pytest.Config) -> str:
    """The URL of the run's server, as a role that may CREATE DATABASE."""
    return pytestconfig.stash[SERVER_URL]


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A database with the schema deployed by the runner's migrator, cloned for each test."""
    name = create_database(admin_url, prefix="alerts_tmpl")
    try:
        # Parallel workers (pytest -n) deploy one template each, one after the other: the first deploy
        # into a new server creates the cluster-wide roles, and two at once would both try.
        with psycopg.connect(admin_url, autocommit=True) as admin, \
                psycopg.connect(with_database(admin_url, name), autocommit=True) as conn:
            admin.execute("SELECT pg_advisory_lock(hashtext('alerts tests: template deploy'))")
            migrate.deploy(conn)
        yield name
    finally:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def deployed_pool(admin_url: str, template_db: str) -> Iterator[ClonePool]:
    """Clones of the template, made and dropped in the background (tests/dbtools.py ClonePool)."""
    pool = ClonePool(admin_url, template=template_db)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def empty_pool(admin_url: str) -> Iterator[ClonePool]:
    pool = ClonePool(admin_url)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def db_url(admin_url: str, deployed_pool: ClonePool) -> Iterator[str]:
    """A fresh, deployed database for one test, dropped afterwards."""
    name = deployed_pool.take()
    try:
        yield with_database(admin_url, name)
    finally:
        deployed_pool.give_back(name)


@pytest.fixture
def empty_db_url(admin_url: str, empty_pool: ClonePool) -> Iterator[str]:
    """A fresh database with nothing deployed."""
    name = empty_pool.take()
    try:
        yield with_database(admin_url, name)
    finally:
        empty_pool.give_back(name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def run_runner(db_url: str | None, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python runner.py ARGS` as a real process against db_url."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    full_env.pop("DATABASE_URL", None)
    if db_url is not None:
        full_env["DATABASE_URL"] = db_url
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
