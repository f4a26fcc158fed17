"""Sqitch's registry (schema `sqitch`), read and written by `runner.py --migrate` as Sqitch writes
it, so `sqitch status`, `sqitch deploy`, `sqitch verify`, `sqitch revert` and `--migrate` agree
on one database in any order: the same tables (registry version 1.1), the same change and tag
ids (alerts.sqitch_plan), one row per deployed change with its dependencies, tags and a `deploy`
event. The tables are created when missing, as `sqitch deploy` creates them on a first deploy."""

import getpass
import os
import socket

import psycopg

from alerts.sqitch_plan import Change

SCHEMA = "sqitch"
REGISTRY_RELEASE = 1.1  # the registry version Sqitch 1.x reads and writes
SQITCH_LOCK_KEY = 75474063  # the advisory lock `sqitch deploy` and `sqitch revert` hold while they run

# The registry's tables, as Sqitch 1.x defines them for PostgreSQL; created only where missing.
_TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.releases (
    version         real        PRIMARY KEY,
    installed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    installer_name  text        NOT NULL,
    installer_email text        NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.projects (
    project         text        PRIMARY KEY,
    uri             text        NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    creator_name    text        NOT NULL,
    creator_email   text        NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.changes (
    change_id       text        PRIMARY KEY,
    script_hash     text        NULL,
    change          text        NOT NULL,
    project         text        NOT NULL REFERENCES {SCHEMA}.projects(project) ON UPDATE CASCADE,
    note            text        NOT NULL DEFAULT '',
    committed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    committer_name  text        NOT NULL,
    committer_email text        NOT NULL,
    planned_at      timestamptz NOT NULL,
    planner_name    text        NOT NULL,
    planner_email   text        NOT NULL,
    UNIQUE (project, script_hash));
CREATE TABLE IF NOT EXISTS {SCHEMA}.tags (
    tag_id          text        PRIMARY KEY,
    tag             text        NOT NULL,
    project         text        NOT NULL REFERENCES {SCHEMA}.projects(project) ON UPDATE CASCADE,
    change_id       text        NOT NULL REFERENCES {SCHEMA}.changes(change_id) ON UPDATE CASCADE,
    note            text        NOT NULL DEFAULT '',
    committed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    committer_name  text        NOT NULL,
    committer_email text        NOT NULL,
    planned_at      timestamptz NOT NULL,
    planner_name    text        NOT NULL,
    planner_email   text        NOT NULL,
    UNIQUE (project, tag));
CREATE TABLE IF NOT EXISTS {SCHEMA}.dependencies (
    change_id       text        NOT NULL REFERENCES {SCHEMA}.changes(change_id) ON UPDATE CASCADE ON DELETE CASCADE,
    type            text        NOT NULL,
    dependency      text        NOT NULL,
    dependency_id   text        NULL REFERENCES {SCHEMA}.changes(change_id) ON UPDATE CASCADE
                    CONSTRAINT dependencies_check CHECK ((type = 'require' AND dependency_id IS NOT NULL)
                                                      OR (type = 'conflict' AND dependency_id IS NULL)),
    PRIMARY KEY (change_id, dependency));
CREATE TABLE IF NOT EXISTS {SCHEMA}.events (
    event           text        NOT NULL CONSTRAINT events_event_check
                                CHECK (event IN ('deploy', 'revert', 'fail', 'merge')),
    change_id       text        NOT NULL,
    change          text        NOT NULL,
    project         text        NOT NULL REFERENCES {SCHEMA}.projects(project) ON UPDATE CASCADE,
    note            text        NOT NULL DEFAULT '',
    requires        text[]      NOT NULL DEFAULT '{{}}',
    conflicts       text[]      NOT NULL DEFAULT '{{}}',
    tags            text[]      NOT NULL DEFAULT '{{}}',
    committed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    committer_name  text        NOT NULL,
    committer_email text        NOT NULL,
    planned_at      timestamptz NOT NULL,
    planner_name    text        NOT NULL,
    planner_email   text        NOT NULL,
    PRIMARY KEY (change_id, committed_at));
"""


def committer() -> tuple[str, str]:
    """Who deploys: SQITCH_FULLNAME and SQITCH_EMAIL as Sqitch reads them, else the system user."""
    user = getpass.getuser()
    return (os.environ.get("SQITCH_FULLNAME") or user,
            os.environ.get("SQITCH_EMAIL") or f"{user}@{socket.gethostname()}")


def exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.changes"]).fetchone()
    return bool(row and row[0])


def deployed(conn: psycopg.Connection, project: str) -> list[str]:
    """The project's deployed change ids, oldest first; none when there is no registry."""
    if not exists(conn):
        return []
    rows = conn.execute(f"SELECT change_id FROM {SCHEMA}.changes WHERE project = %s ORDER BY committed_at",
                        [project]).fetchall()
    return [row[0] for row in rows]


def create(conn: psycopg.Connection, project: str) -> None:
    """The registry's tables, its release row and the project's row, where missing (one transaction)."""
    name, email = committer()
    with conn.transaction():
        conn.execute("SET LOCAL client_min_messages = warning")
        conn.execute(_TABLES)
        conn.execute(f"INSERT INTO {SCHEMA}.releases (version, installer_name, installer_email) "
                     f"SELECT %s, %s, %s WHERE NOT EXISTS (SELECT FROM {SCHEMA}.releases)",
                     [REGISTRY_RELEASE, name, email])
        conn.execute(f"INSERT INTO {SCHEMA}.projects (project, uri, creator_name, creator_email) "
                     "VALUES (%s, NULL, %s, %s) ON CONFLICT (project) DO NOTHING", [project, name, email])


def record_deploy(conn: psycopg.Connection, change: Change) -> None:
    """The change as deployed: its row, dependencies, tags and a `deploy` event (one transaction).
    A dependency's id is the change it names as deployed (name@tag: its version as of the tag)."""
    name, email = committer()
    with conn.transaction():
        conn.execute(
            f"INSERT INTO {SCHEMA}.changes (change_id, script_hash, change, project, note, committer_name, "
            "committer_email, planned_at, planner_name, planner_email) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [change.id, change.script_hash, change.name, change.project, change.note, name, email,
             change.planned_at_time, change.planner_name, change.planner_email])
        for dependency in change.dependencies:
            conn.execute(
                f"INSERT INTO {SCHEMA}.dependencies (change_id, type, dependency, dependency_id) "
                "VALUES (%s, %s, %s, %s)",
                [change.id, "conflict" if dependency.conflicts else "require", dependency.name,
                 None if dependency.conflicts else _deployed_id(conn, change.project, dependency.name)])
        _insert_tags(conn, change)
        conn.execute(
            f"INSERT INTO {SCHEMA}.events (event, change_id, change, project, note, requires, conflicts, tags, "
            "committer_name, committer_email, planned_at, planner_name, planner_email) "
            "VALUES ('deploy', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [change.id, change.name, change.project, change.note,
             [d.name for d in change.dependencies if not d.conflicts],
             [d.name for d in change.dependencies if d.conflicts], [tag.name for tag in change.tags],
             name, email, change.planned_at_time, change.planner_name, change.planner_email])


def record_new_tags(conn: psycopg.Connection, change: Change) -> None:
    """Tags the plan gained on an already deployed change (as `sqitch deploy` records them)."""
    with conn.transaction():
        _insert_tags(conn, change)


def _insert_tags(conn: psycopg.Connection, change: Change) -> None:
    name, email = committer()
    for tag in change.tags:
        conn.execute(
            f"INSERT INTO {SCHEMA}.tags (tag_id, tag, project, change_id, note, committer_name, committer_email, "
            "planned_at, planner_name, planner_email) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tag_id) DO NOTHING",
            [tag.id, tag.name, tag.project, change.id, tag.note, name, email, tag.planned_at_time,
             tag.planner_name, tag.planner_email])


def _deployed_id(conn: psycopg.Connection, project: str, dependency: str) -> str | None:
    """The deployed change a dependency names, looked up as Sqitch does: `name@tag` is the latest
    version of name committed before the tag, `name` the earliest version deployed."""
    change, _, tag = dependency.partition("@")
    if tag:
        row = conn.execute(
            f"SELECT c.change_id FROM {SCHEMA}.changes c JOIN {SCHEMA}.tags t "
            "ON c.committed_at <= t.committed_at AND c.project = t.project "
            "WHERE c.project = %s AND c.change = %s AND t.tag = %s ORDER BY c.committed_at DESC LIMIT 1",
            [project, change, f"@{tag}"]).fetchone()
    else:
        row = conn.execute(f"SELECT change_id FROM {SCHEMA}.changes WHERE project = %s AND change = %s "
                           "ORDER BY committed_at LIMIT 1", [project, change]).fetchone()
    return row[0] if row else None
