"""The engine's functions run as alerts_owner (NOLOGIN, not superuser, no BYPASSRLS), never as the
role that deployed them; deploying works as a superuser and as a managed database's admin
(CREATEROLE and database owner), and a deployer who may not create or join the roles is stopped
before anything is deployed, with one line saying what a DBA must run."""

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from alerts import migrate
from devtools.embedded_pg import embedded_cluster
from tests.conftest import run_runner
from tests.dbtools import create_database, drop_database, with_database
from tests.test_migrations import sqitch

ENGINE_TABLES = ("alert_events", "user_alert_deliveries", "alert_digests", "alerts_config", "alerts_runs")


def _not_owned_by_alerts_owner(conn: psycopg.Connection) -> list[str]:
    """Functions of schema public, and SECURITY DEFINER functions anywhere outside the system
    schemas, whose owner is not alerts_owner; engine tables likewise."""
    return [row[0] for row in conn.execute("""
        SELECT p.oid::regprocedure::text || ' owned by ' || pg_get_userbyid(p.proowner)
          FROM pg_proc p
         WHERE (p.pronamespace = 'public'::regnamespace
                OR (p.prosecdef AND p.pronamespace NOT IN ('pg_catalog'::regnamespace,
                                                           'information_schema'::regnamespace)))
           AND p.proowner <> 'alerts_owner'::regrole
        UNION ALL
        SELECT c.oid::regclass::text || ' owned by ' || pg_get_userbyid(c.relowner)
          FROM pg_class c
         WHERE c.oid = ANY (%s::regclass[]) AND c.relowner <> 'alerts_owner'::regrole
         ORDER BY 1""", [list(ENGINE_TABLES)]).fetchall()]


def test_every_engine_function_and_table_belongs_to_a_plain_owner_role(conn):
    assert _not_owned_by_alerts_owner(conn) == []
    role = conn.execute("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication "
                        "FROM pg_roles WHERE rolname = 'alerts_owner'").fetchone()
    assert role == (False, False, False, False, False, False)
    # It may read the host's input tables and not change them.
    assert conn.execute("SELECT has_table_privilege('alerts_owner', 'events', 'SELECT'), "
                        "has_table_privilege('alerts_owner', 'events', 'INSERT'), "
                        "has_table_privilege('alerts_owner', 'users', 'UPDATE'), "
                        "has_schema_privilege('alerts_owner', 'public', 'CREATE')").fetchone() == (
        True, False, False, False)


def test_a_host_table_named_like_an_alert_table_stays_its_own(conn):
    """Only the engine's tables (alert_events, alert_digests, user_alert_deliveries, alerts_*) are
    handed to alerts_owner: a host's alert_rules keeps its owner."""
    conn.execute("CREATE TABLE alert_rules (id integer)")
    conn.execute("SELECT alerts_assign_owner()")
    owner = conn.execute("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'alert_rules'::regclass").fetchone()
    assert owner == (conn.info.user,)


def test_a_host_security_definer_function_of_its_own_passes_the_owner_verify(conn):
    """The verify checks the engine's functions only: a host's own SECURITY DEFINER function, owned by
    the host, is not the engine's to hand over (it would fail `sqitch verify` and its revert)."""
    conn.execute("CREATE FUNCTION host_report_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
                 "AS 'SELECT count(*) FROM users'")
    verify = migrate.load_script(migrate.MIGRATIONS_DIR / "verify" / "engine_owner.sql")
    conn.execute(verify.encode())
    conn.execute("ALTER FUNCTION alerts_lease_seconds() OWNER TO postgres")  # an engine function left behind
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute(verify.encode())


def test_a_function_added_by_a_later_migration_is_handed_over_by_alerts_assign_owner(conn):
    conn.execute("""CREATE FUNCTION alerts_later_change() RETURNS integer LANGUAGE sql SECURITY DEFINER
                    SET search_path = pg_catalog, public, pg_temp AS 'SELECT 1'""")
    conn.execute("""CREATE FUNCTION count_later_rows() RETURNS bigint LANGUAGE sql SECURITY DEFINER
                    SET search_path = pg_catalog, public, pg_temp AS 'SELECT count(*) FROM alert_events'""")
    conn.execute("CREATE TABLE alerts_later_table (id bigserial PRIMARY KEY)")
    assert len(_not_owned_by_alerts_owner(conn)) == 2
    assert conn.execute("SELECT alerts_assign_owner()").fetchone() == (3,)
    assert _not_owned_by_alerts_owner(conn) == []
    assert conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class "
                        "WHERE oid = 'alerts_later_table'::regclass").fetchone() == ("alerts_owner",)
    assert conn.execute("SELECT alerts_assign_owner()").fetchone() == (0,)


SPY = """
CREATE TABLE spy_log (who text, superuser boolean, bypassrls boolean, read_secret text, create_role text,
                      read_passwords text);
GRANT INSERT ON spy_log TO PUBLIC;
CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $spy$
DECLARE
    secret_result text := 'read';
    role_result text := 'created';
    password_result text := 'read';
BEGIN
    BEGIN
        PERFORM * FROM secret_data;
    EXCEPTION WHEN insufficient_privilege THEN secret_result := 'denied';
    END;
    BEGIN
        EXECUTE 'CREATE ROLE spy_made_this_' || pg_backend_pid();
        EXECUTE 'DROP ROLE spy_made_this_' || pg_backend_pid();
    EXCEPTION WHEN insufficient_privilege THEN role_result := 'denied';
    END;
    BEGIN
        PERFORM rolpassword FROM pg_authid;
    EXCEPTION WHEN insufficient_privilege THEN password_result := 'denied';
    END;
    INSERT INTO spy_log
    SELECT current_user, r.rolsuper, r.rolbypassrls, secret_result, role_result, password_result
      FROM pg_roles r WHERE r.rolname = current_user;
    RETURN true;
END
$spy$;
ALTER TABLE events RENAME TO events_real;
CREATE VIEW events AS SELECT * FROM events_real WHERE spy();
GRANT SELECT ON events TO PUBLIC;
INSERT INTO events_real (title, region, severity_score) VALUES ('bait', 'Europe', 5);
"""


@pytest.fixture
def host_role(conn: psycopg.Connection) -> Iterator[str]:
    name = f"host_app_{uuid.uuid4().hex[:10]}"
    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        conn.execute("RESET ROLE")
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_host_role_that_swaps_events_for_a_view_gains_nothing(conn, host_role):
    """The host role owns events and replaces it with a view calling its own function; the
    runner's Phase A then runs that function, as alerts_owner: no superuser, no other data."""
    conn.execute("CREATE TABLE secret_data (v text)")
    conn.execute("INSERT INTO secret_data VALUES ('only the deployer reads this')")
    conn.execute(sql.SQL("ALTER TABLE events OWNER TO {}").format(sql.Identifier(host_role)))
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(host_role)))
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(host_role)))
    conn.execute(SPY)
    conn.execute("RESET ROLE")

    conn.execute("SET ROLE alerts_runner")
    counts = conn.execute("SELECT alerts_phase_a()").fetchone()[0]
    conn.execute("RESET ROLE")

    assert counts["created"] == 1
    seen = conn.execute("SELECT DISTINCT who, superuser, bypassrls, read_secret, create_role, read_passwords "
                        "FROM spy_log").fetchall()
    assert seen == [("alerts_owner", False, False, "denied", "denied", "denied")]


@pytest.fixture
def deployer(admin_url: str) -> Iterator[tuple[str, str, str]]:
    """A login role that owns a fresh, empty database and is not superuser: (role, its URL,
    the database's URL as superuser)."""
    role = f"deployer_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(role)))
        database = create_database(admin_url, prefix="alerts_deployer")
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database),
                                                                     sql.Identifier(role)))
    url = with_database(admin_url, database).replace("://postgres@", f"://{role}@", 1)
    assert f"://{role}@" in url, "the test server URL must name its user (postgres)"
    try:
        yield role, url, with_database(admin_url, database)
    finally:
        drop_database(admin_url, database)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _deployed_and_working(url: str) -> None:
    """Every engine object belongs to alerts_owner, and the runner role runs Phases A and B
    (url is the database's URL as a superuser, who may act as alerts_runner)."""
    with psycopg.connect(url, autocommit=True) as conn:
        assert _not_owned_by_alerts_owner(conn) == []
        conn.execute("INSERT INTO events (title, region, severity_score) VALUES ('blast', 'Europe', 5)")
        conn.execute("SET ROLE alerts_runner")
        assert conn.execute("SELECT alerts_phase_a()->'created'").fetchone() == (1,)
        assert conn.execute("SELECT alerts_phase_b()->'events_fanned_out'").fetchone() == (1,)


def test_a_managed_database_admin_with_createrole_deploys_with_either_tool(admin_url, deployer):
    role, url, superuser_url = deployer
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(role)))
        version = admin.execute("SELECT current_setting('server_version_num')::integer").fetchone()[0]
        if version >= 160000:  # 16+: CREATEROLE grants only roles it created; alerts_owner exists here
            admin.execute(sql.SQL("GRANT alerts_owner TO {}").format(sql.Identifier(role)))
    result = run_runner(url, "--migrate")
    assert result.returncode == 0, result.stderr
    _deployed_and_working(superuser_url)
    again = run_runner(url, "--migrate")  # replaces functions alerts_owner owns: needs membership
    assert again.returncode == 0, again.stderr
    sqitch(url, "deploy", "--verify")
    _deployed_and_working(superuser_url)


def test_a_deployer_who_may_not_join_alerts_owner_is_stopped_before_anything_is_deployed(admin_url, deployer):
    role, url, superuser_url = deployer
    result = run_runner(url, "--migrate")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"have a DBA run GRANT alerts_owner TO {role}; then deploy again" in lines[0], lines[0]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone() \
            == (0,)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("GRANT alerts_owner TO {}").format(sql.Identifier(role)))
    result = run_runner(url, "--migrate")
    assert result.returncode == 0, result.stderr
    _deployed_and_working(superuser_url)


def test_missing_roles_are_named_with_the_statements_that_create_them():
    """A cluster where the roles were never created (roles are cluster-wide, so a throwaway one):
    the deployer without CREATEROLE gets the exact statements, and they are enough."""
    with embedded_cluster() as server:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("CREATE ROLE app_admin LOGIN")
            admin.execute("CREATE DATABASE app OWNER app_admin")
        url = with_database(server.url, "app").replace("://postgres@", "://app_admin@", 1)
        result = run_runner(url, "--migrate")
        assert result.returncode == 1
        line = result.stderr.strip()
        assert "\n" not in line, line
        statements = re.search(r"have a DBA run (.*) then deploy again", line)
        assert statements, line
        assert statements[1] == ("CREATE ROLE alerts_owner NOLOGIN; CREATE ROLE alerts_runner NOLOGIN; "
                                 "CREATE ROLE alerts_readonly NOLOGIN; CREATE ROLE alerts_host NOLOGIN; "
                                 "GRANT alerts_owner TO app_admin;")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('users')").fetchone() == (None,)
        with psycopg.connect(server.url, autocommit=True) as admin:
            for statement in statements[1].split(";")[:-1]:
                admin.execute(statement)
        result = run_runner(url, "--migrate")
        assert result.returncode == 0, result.stderr
        _deployed_and_working(with_database(server.url, "app"))



def test_tables_adopted_from_the_host_application_stay_its_own(empty_db_url):
    """A pre-v2 installation whose host role owns alert_events and user_alert_deliveries: after the
    upgrade that role still owns them and still writes them; alerts_owner only got privileges."""
    from tests.legacy_fixture import load_legacy

    host = f"host_app_{uuid.uuid4().hex[:10]}"
    load_legacy(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(host)))
        try:
            for table in ("alert_events", "user_alert_deliveries", "events"):
                conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(host)))
            assert run_runner(empty_db_url, "--migrate").returncode == 0
            owners = dict(conn.execute("SELECT relname, pg_get_userbyid(relowner) FROM pg_class "
                                       "WHERE relname IN ('alert_events', 'user_alert_deliveries', 'events', "
                                       "'alerts_runs')").fetchall())
            assert owners == {"alert_events": host, "user_alert_deliveries": host, "events": host,
                              "alerts_runs": "alerts_owner"}
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(host)))
            conn.execute("UPDATE user_alert_deliveries SET last_error = last_error")  # the host app still writes
            conn.execute("INSERT INTO events (title, region, severity_score) VALUES ('host blast', 'Asia', 5)")
            conn.execute("SET ROLE alerts_runner")
            assert conn.execute("SELECT alerts_phase_a()->'created'").fetchone()[0] >= 1
            assert conn.execute("SELECT alerts_phase_b()->'locked'").fetchone() == (True,)
            conn.execute("RESET ROLE")
            assert _not_owned_by_alerts_owner(conn) == [f"alert_events owned by {host}",
                                                        f"user_alert_deliveries owned by {host}"]
        finally:
            conn.execute("RESET ROLE")
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(host)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(host)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(host)))
