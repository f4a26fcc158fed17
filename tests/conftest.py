"""Fixtures: a real PostgreSQL server, a deployed template database, a fresh database per test."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from alerts import migrate
from tests.dbtools import NoTestDatabase, create_database, drop_database, server_url, with_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    try:
        with server_url() as url:
            yield url
    except NoTestDatabase as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A database with the schema deployed by the runner's migrator, cloned for each test."""
    name = create_database(admin_url, prefix="alerts_tmpl")
    try:
        with psycopg.connect(with_database(admin_url, name), autocommit=True) as conn:
            migrate.deploy(conn)
        yield name
    finally:
        drop_database(admin_url, name)


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, deployed database for one test, dropped afterwards."""
    name = create_database(admin_url, template=template_db)
    try:
        yield with_database(admin_url, name)
    finally:
        drop_database(admin_url, name)


@pytest.fixture
def empty_db_url(admin_url: str) -> Iterator[str]:
    """A fresh database with nothing deployed."""
    name = create_database(admin_url)
    try:
        yield with_database(admin_url, name)
    finally:
        drop_database(admin_url, name)


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
