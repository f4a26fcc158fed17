"""Deploys db/migrations/sqitch.plan without Perl or psql.

Runs every change's deploy script in plan order, each exactly as `sqitch deploy`
would hand it to psql (autocommit; the script holds its own BEGIN/COMMIT), with
psql's `\\ir` includes expanded. Deploy scripts are idempotent, so this path and
Sqitch can follow each other in any order. It keeps no registry of its own:
Sqitch's registry (schema `sqitch`) is Sqitch's alone.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from alerts.db import one_line
from alerts.errors import AlertsError
from alerts.locks import MIGRATE_LOCK_NAME, lock_key

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "db" / "migrations"
PLAN_FILE = MIGRATIONS_DIR / "sqitch.plan"

_INCLUDE = re.compile(r"^\s*\\ir\s+(?P<path>\S+)\s*$")
_CHANGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Change:
    name: str
    deploy_script: Path


def read_plan(plan_file: Path = PLAN_FILE) -> list[Change]:
    """The plan's changes in order; pragmas (%), tags (@) and comments are ignored."""
    changes: list[Change] = []
    for number, raw in enumerate(plan_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("%", "@", "#")):
            continue
        name = line.split()[0]
        if not _CHANGE_NAME.match(name):
            raise AlertsError(f"{plan_file}:{number}: cannot read change name {name!r}")
        if any(change.name == name for change in changes):
            raise AlertsError(f"{plan_file}:{number}: reworked change {name!r} is not supported by --migrate")
        changes.append(Change(name, plan_file.parent / "deploy" / f"{name}.sql"))
    return changes


def load_script(path: Path) -> str:
    """The script's SQL with `\\ir` includes expanded; any other psql command is refused."""
    lines: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        include = _INCLUDE.match(raw)
        if include:
            lines.append(load_script((path.parent / include["path"]).resolve()))
        elif raw.lstrip().startswith("\\"):
            raise AlertsError(f"{path}:{number}: psql command {raw.strip()!r} cannot run without psql")
        else:
            lines.append(raw)
    return "\n".join(lines) + "\n"


def deploy(conn: psycopg.Connection, *, dry_run: bool = False) -> dict[str, object]:
    """Apply every change of the plan; with dry_run only list them. Serialised by an advisory lock."""
    changes = read_plan()
    scripts = [(change, load_script(change.deploy_script)) for change in changes]
    names = [change.name for change in changes]
    if dry_run:
        return {"migrate": "dry_run", "would_apply": names}
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(MIGRATE_LOCK_NAME)])
    try:
        for change, sql in scripts:
            try:
                conn.execute(sql.encode("utf-8"))
            except psycopg.Error as error:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise AlertsError(f"migration {change.name} failed: {one_line(error)}") from None
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(MIGRATE_LOCK_NAME)])
    return {"migrate": "ok", "applied": names}
