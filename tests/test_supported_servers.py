"""The PostgreSQL versions the schema supports: 15 and newer (CI runs 15 and 18); an older
server is refused by --migrate with one line before anything is deployed."""

import psycopg
import pytest

from alerts import migrate
from alerts.errors import AlertsError


@pytest.mark.parametrize("version_num, shown", [(140011, "14.11"), (130000, "13.0"), (140000, "14.0")])
def test_migrate_refuses_a_server_older_than_15(version_num, shown):
    with pytest.raises(AlertsError) as raised:
        migrate.require_supported_server(version_num)
    message = str(raised.value)
    assert message.startswith(f"PostgreSQL {shown} is not supported") and "15 or newer" in message
    assert "\n" not in message


@pytest.mark.parametrize("version_num", [150000, 150020, 160004, 170000, 180001])
def test_migrate_accepts_15_and_newer(version_num):
    migrate.require_supported_server(version_num)


def test_the_test_server_is_a_supported_version_and_deploys(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.info.server_version >= migrate.MIN_SERVER_VERSION_NUM
        assert migrate.deploy(conn)["migrate"] == "ok"
