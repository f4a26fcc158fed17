"""Where the test databases come from: DATABASE_URL, else a testcontainers PostgreSQL,
else a clear failure. Each test gets a fresh database cloned from a deployed template."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

NO_DATABASE_MESSAGE = (
    "no test database: set DATABASE_URL=postgresql://user@host:5432/postgres "
    "(a role that may CREATE DATABASE), or start a Docker engine for testcontainers"
)


class NoTestDatabase(RuntimeError):
    pass


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextmanager
def server_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server for the whole test session."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield url
        return
    try:
        import docker  # noqa: F401  (installed with testcontainers)
        from testcontainers.postgres import PostgresContainer

        docker.from_env().ping()
    except Exception as error:
        raise NoTestDatabase(f"{NO_DATABASE_MESSAGE} ({type(error).__name__})") from None
    with PostgresContainer("postgres:15", driver=None) as container:
        yield container.get_connection_url()


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
