"""Deploys db/migrations/sqitch.plan without Perl or psql, as `sqitch deploy` does.

Runs the deploy script of every change the registry does not record yet (alerts.sqitch_registry:
Sqitch's own tables and ids), in plan order, each exactly as `sqitch deploy` would hand it to
psql (autocommit; the script holds its own BEGIN/COMMIT), with psql's `\\ir` includes expanded.
A script that is one transaction (BEGIN first, COMMIT last) is sent in one piece; any other
script runs statement by statement, as psql runs it, so it may hold several transactions,
`CREATE INDEX CONCURRENTLY`, a `DO` block that commits between batches, and psql's `\\gexec`
(each value of the query's result is run as a statement). Each change is recorded in the
registry once deployed and verified, so this path and Sqitch follow each other in any order.
"""

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from alerts import sqitch_plan, sqitch_registry
from alerts.db import one_line
from alerts.errors import AlertsError
from alerts.locks import MIGRATE_LOCK_NAME, PHASE_LOCK_NAMES, lock_key
from alerts.sqitch_plan import Change, Plan


def sql_root() -> Path:
    """db/ of the repository in a checkout; alerts/sql/, the same tree shipped as package data, when installed."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "db", package / "sql"):
        if (candidate / "migrations" / "sqitch.plan").is_file():
            return candidate
    return package.parent / "db"  # deploy() says it is missing


MIGRATIONS_DIR = sql_root() / "migrations"
PLAN_FILE = MIGRATIONS_DIR / "sqitch.plan"

_INCLUDE = re.compile(r"^\s*\\ir\s+(?P<path>\S+)\s*$")
_GEXEC = re.compile(r"^\s*\\gexec\s*$")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_TRANSACTION_CONTROL = re.compile(r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b", re.IGNORECASE)
log = logging.getLogger("alerts")

DEFAULT_WAIT_SECONDS = 120.0  # how long a deploy waits for running phase steps to give their locks up
DEFAULT_ATTEMPTS = 5  # tries of a change stopped by a lock timeout, a deadlock or a serialization failure
RETRY_FIRST_SECONDS = 0.5  # the pause before the second try; doubled before each later one
RETRIED_SQLSTATES = {"55P03", "40P01", "40001"}
MIN_SERVER_VERSION_NUM = 150000  # the oldest PostgreSQL the test suite runs on (CI: 15 and 18)


@dataclass(frozen=True)
class Statement:
    """One statement of a script; with gexec, each value of its result is run as a statement too."""
    sql: str
    gexec: bool = False


def read_plan(plan_file: Path = PLAN_FILE) -> list[Change]:
    """The plan's changes in order, each version of a reworked change once (alerts.sqitch_plan)."""
    return sqitch_plan.read(plan_file).changes


def load_script(path: Path) -> str:
    """The script's SQL with `\\ir` includes expanded; any other psql command is refused."""
    lines: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        include = _INCLUDE.match(raw)
        if include:
            lines.append(load_script((path.parent / include["path"]).resolve()))
        elif _GEXEC.match(raw):
            lines.append("\\gexec")
        elif raw.lstrip().startswith("\\"):
            raise AlertsError(f"{path}:{number}: psql command {raw.strip()!r} cannot run without psql")
        else:
            lines.append(raw)
    return "\n".join(lines) + "\n"


def _quoted_end(sql: str, start: int) -> int:
    """The index just past the quoted string, identifier or dollar-quoted body opening at start."""
    opener = sql[start]
    if opener == "$":
        tag = _DOLLAR_TAG.match(sql, start)
        assert tag is not None
        close = sql.find(tag.group(), tag.end())
        return len(sql) if close < 0 else close + len(tag.group())
    backslash_escapes = opener == "'" and start > 0 and sql[start - 1] in "eE" and not _follows_word(sql, start - 1)
    position = start + 1
    while position < len(sql):
        char = sql[position]
        if backslash_escapes and char == "\\":
            position += 2
            continue
        if char == opener:
            if sql.startswith(opener, position + 1):
                position += 2
                continue
            return position + 1
        position += 1
    return len(sql)


def _comment_end(sql: str, start: int) -> int:
    """The index just past the -- or (nested) /* */ comment opening at start."""
    if sql.startswith("--", start):
        newline = sql.find("\n", start)
        return len(sql) if newline < 0 else newline
    depth, position = 1, start + 2
    while position < len(sql) and depth:
        if sql.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif sql.startswith("*/", position):
            depth, position = depth - 1, position + 2
        else:
            position += 1
    return position


def _gexec_line_at(sql: str, position: int) -> bool:
    """Whether a line holding only `\\gexec` starts at position."""
    if position and sql[position - 1] != "\n":
        return False
    end = sql.find("\n", position)
    return bool(_GEXEC.match(sql[position:] if end < 0 else sql[position:end]))


def split_statements(sql: str) -> list[Statement]:
    """The script's statements, split as psql splits them: at semicolons outside quotes,
    dollar-quoted bodies and comments, and at `\\gexec` lines. Comments before a
    statement are left out; comment-only pieces are dropped."""
    statements: list[Statement] = []
    code_start: int | None = None
    position = 0

    def flush(end: int, gexec: bool = False) -> None:
        if code_start is not None:
            statements.append(Statement(sql[code_start:end].strip(), gexec))

    while position < len(sql):
        char = sql[position]
        if sql.startswith(("--", "/*"), position):
            position = _comment_end(sql, position)
        elif char == ";":
            flush(position)
            code_start, position = None, position + 1
        elif char == "\\" and _gexec_line_at(sql, position):
            flush(position, gexec=True)
            code_start, position = None, position + len("\\gexec")
        elif char.isspace():
            position += 1
        else:
            code_start = position if code_start is None else code_start
            position = _quoted_end(sql, position) if _opens_quote(sql, position) else position + 1
    flush(len(sql))
    return statements


def _opens_quote(sql: str, position: int) -> bool:
    """Whether a string, quoted identifier or dollar-quoted body opens at position."""
    char = sql[position]
    if char in "'\"":
        return True
    return char == "$" and not _follows_word(sql, position) and _DOLLAR_TAG.match(sql, position) is not None


def _follows_word(sql: str, position: int) -> bool:
    """Whether the character before position belongs to a word (identifier or keyword)."""
    return position > 0 and (sql[position - 1].isalnum() or sql[position - 1] == "_")


def is_single_transaction(statements: list[Statement]) -> bool:
    """Whether the script is BEGIN ... COMMIT with no other transaction control and no \\gexec."""
    control = [i for i, s in enumerate(statements) if _TRANSACTION_CONTROL.match(s.sql)]
    return (len(statements) >= 2 and control == [0, len(statements) - 1]
            and statements[0].sql.upper().startswith(("BEGIN", "START"))
            and not any(s.gexec for s in statements))


def run_script(conn: psycopg.Connection, sql: str) -> None:
    """Run one deploy script on an autocommit connection, as psql would."""
    statements = split_statements(sql)
    if is_single_transaction(statements):
        conn.execute(sql.encode("utf-8"))
        return
    for statement in statements:
        cursor = conn.execute(statement.sql.encode("utf-8"))
        if statement.gexec and cursor.description:
            for row in cursor.fetchall():
                for value in row:
                    if value is not None:
                        conn.execute(str(value).encode("utf-8"))


def verify_error(conn: psycopg.Connection, change: Change) -> str | None:
    """Why the change's verify script fails now, or None when it passes (run in a transaction
    that is rolled back)."""
    conn.execute("BEGIN")
    try:
        for statement in split_statements(load_script(change.verify_script)):
            conn.execute(statement.sql.encode("utf-8"))
        return None
    except psycopg.Error as error:
        return one_line(error)
    finally:
        conn.execute("ROLLBACK")


def verifies(conn: psycopg.Connection, change: Change) -> bool:
    """Whether the change's verify script passes now."""
    return verify_error(conn, change) is None


class MigrateLock:
    """The locks a deploy holds, all transaction-scoped on a connection of their own and taken by
    polling (never by waiting in the server), so a deploy can neither deadlock nor hold a snapshot
    that CREATE INDEX CONCURRENTLY on the deploying connection would wait for: a session blocked
    in pg_advisory_lock() holds one all the while. Transaction-scoped, so a transaction pooler
    (PgBouncer) can neither strand them on a server connection nor release them early."""

    def __init__(self, lock_conn: psycopg.Connection, poll_seconds: float) -> None:
        self._conn = lock_conn
        self._poll = poll_seconds

    def _try(self, *keys: int) -> bool:
        taken = sql.SQL(" AND ").join(sql.SQL("pg_try_advisory_xact_lock({})").format(sql.Literal(k)) for k in keys)
        if self._conn.execute(sql.SQL("SELECT {}").format(taken)).fetchone()[0]:  # type: ignore[index]
            return True
        return False

    def take_deploy_locks(self) -> None:
        """alerts_v2_migrate and the key `sqitch deploy`/`sqitch revert` hold, so runner deploys and
        Sqitch take turns; waits as long as another deploy runs."""
        keys = (lock_key(MIGRATE_LOCK_NAME), sqitch_registry.SQITCH_LOCK_KEY)
        while not self._try(*keys):
            self._conn.rollback()
            time.sleep(self._poll)

    def pause_phases(self, wait_seconds: float) -> None:
        """Every phase's lock, exclusively, in one order (A, B, C, D), each polled until free: runs
        that start meanwhile skip, running senders stop claiming at their next claim, record what
        they sent and exit 0 paused. Held until the deploy ends. Raises if a phase keeps its lock."""
        deadline = time.monotonic() + wait_seconds
        for phase, name in sorted(PHASE_LOCK_NAMES.items()):
            while not self._try(lock_key(name)):
                if time.monotonic() > deadline:
                    raise AlertsError(f"phase {phase.upper()} kept its lock ({name}) for {wait_seconds:g} s, so "
                                      "nothing was deployed: run --migrate again, or raise ALERTS_MIGRATE_WAIT_SECONDS")
                time.sleep(self._poll)


@contextmanager
def migrate_lock(conn: psycopg.Connection, poll_seconds: float = 0.2) -> Iterator[MigrateLock]:
    """Hold the deploy locks (MigrateLock) while the scripts run on conn."""
    with psycopg.connect(conn.info.dsn, password=conn.info.password, prepare_threshold=None,
                         application_name="alerts_v2_migrate") as lock_conn:
        lock = MigrateLock(lock_conn, poll_seconds)
        try:
            lock.take_deploy_locks()
            yield lock
        finally:
            lock_conn.rollback()


def migration_running(conn: psycopg.Connection) -> bool:
    """Whether a deploy holds alerts_v2_migrate now (a shared try on an autocommit connection)."""
    key = sql.Literal(lock_key(MIGRATE_LOCK_NAME))
    row = conn.execute(sql.SQL("SELECT NOT pg_try_advisory_xact_lock_shared({})").format(key)).fetchone()
    return bool(row and row[0])


def require_supported_server(version_num: int) -> None:
    """Refuse a server older than PostgreSQL 15 (version_num as in server_version_num, e.g. 150020)."""
    if version_num < MIN_SERVER_VERSION_NUM:
        found = f"{version_num // 10000}.{version_num % 10000}"
        raise AlertsError(f"PostgreSQL {found} is not supported: the schema needs PostgreSQL "
                          f"{MIN_SERVER_VERSION_NUM // 10000} or newer (15 to 18 are tested); upgrade the server")


def load_plan() -> Plan:
    if not PLAN_FILE.is_file():
        raise AlertsError(f"{PLAN_FILE} is missing: run from a checkout of the repository or reinstall alerts-v2")
    return sqitch_plan.read(PLAN_FILE)


def pending_changes(conn: psycopg.Connection, plan: Plan) -> tuple[list[Change], Change | None]:
    """The plan's changes after the newest one the registry records as deployed, and that one
    (None when the registry records nothing: every change is pending). Refuses a database whose
    newest change this plan does not hold (deployed by a newer release)."""
    deployed = sqitch_registry.deployed(conn, plan.project)
    if not deployed:
        return plan.changes, None
    position = plan.index_of(deployed[-1])
    if position is None:
        raise AlertsError(f"the database's newest change (id {deployed[-1]}) is not in {PLAN_FILE}: it was deployed "
                          "by a newer release; deploy with that release, or revert with its Sqitch plan")
    return plan.changes[position + 1:], plan.changes[position]


def _positive_env(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if value <= 0:
        raise AlertsError(f"{name}={text!r} is not a positive number of seconds; unset it or give e.g. {default:g}")
    return value


def check(conn: psycopg.Connection) -> dict[str, object]:
    """What a deploy would apply, read without a lock: the gate of a release pipeline."""
    plan = load_plan()
    pending, current = pending_changes(conn, plan)
    return {"migrate": "check", "current": current.name if current else None,
            "pending": [change.name for change in pending]}


def deploy(conn: psycopg.Connection, *, dry_run: bool = False) -> dict[str, object]:
    """Apply the plan's pending changes in order and record each in Sqitch's registry; with dry_run
    only list them. An up-to-date database runs nothing and takes no lock but the deploy locks.
    Pending changes run with the phases paused (MigrateLock.pause_phases); a change that fails on a
    lock timeout, a deadlock or a serialization failure is tried again (ALERTS_MIGRATE_ATTEMPTS)."""
    plan = load_plan()
    require_supported_server(conn.info.server_version)
    if dry_run:
        pending, current = pending_changes(conn, plan)
        return {"migrate": "dry_run", "current": current.name if current else None,
                "would_apply": [change.name for change in pending]}
    wait_seconds = _positive_env("ALERTS_MIGRATE_WAIT_SECONDS", DEFAULT_WAIT_SECONDS)
    attempts = int(_positive_env("ALERTS_MIGRATE_ATTEMPTS", DEFAULT_ATTEMPTS))
    conn.autocommit = True
    with migrate_lock(conn) as lock:
        if not sqitch_registry.exists(conn) or not sqitch_registry.deployed(conn, plan.project):
            sqitch_registry.create(conn, plan.project)
        pending, current = pending_changes(conn, plan)
        if not pending:
            assert current is not None
            sqitch_registry.record_new_tags(conn, current)
            return {"migrate": "ok", "applied": [], "current": current.name}
        lock.pause_phases(wait_seconds)
        newest_deployed = _newest_versions_in_place(conn, plan) if current is None else set()
        for change in pending:
            if not (change.superseded and change.name in newest_deployed):
                _apply(conn, change, attempts)
            sqitch_registry.record_deploy(conn, change)
    return {"migrate": "ok", "applied": [change.name for change in pending], "current": pending[-1].name}


def _newest_versions_in_place(conn: psycopg.Connection, plan: Plan) -> set[str]:
    """Reworked changes whose newest version already verifies: a database the runner deployed before
    it kept a registry. Their older versions are recorded, not run: running one would take it back."""
    reworked = {change.name for change in plan.changes if change.superseded}
    return {change.name for change in plan.changes
            if change.name in reworked and not change.superseded and verifies(conn, change)}


def _apply(conn: psycopg.Connection, change: Change, attempts: int) -> None:
    """Run the change's deploy script, then its verify script; a run stopped by a lock timeout, a
    deadlock or a serialization failure changed nothing (or, statement by statement, is idempotent)
    and is tried again after a growing pause."""
    script = load_script(change.deploy_script)
    for attempt in range(1, attempts + 1):
        try:
            run_script(conn, script)
            break
        except psycopg.Error as error:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            if error.sqlstate not in RETRIED_SQLSTATES or attempt == attempts:
                tried = f" (tried {attempt} times)" if attempt > 1 else ""
                raise AlertsError(f"migration {change.name} failed{tried}: {one_line(error)}") from None
            pause = RETRY_FIRST_SECONDS * 2 ** (attempt - 1)
            log.warning("migration %s: %s; another session holds what it needs, trying again in %.1f s "
                        "(try %s of %s)", change.name, one_line(error), pause, attempt, attempts)
            time.sleep(pause)
    failure = verify_error(conn, change)
    if failure:
        raise AlertsError(f"migration {change.name} deployed but its verify script fails ({failure}); "
                          "it is not recorded, so the next --migrate runs it again")
