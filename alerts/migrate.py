"""Deploys db/migrations/sqitch.plan without Perl or psql.

Runs every change's deploy script in plan order, each exactly as `sqitch deploy`
would hand it to psql (autocommit; the script holds its own BEGIN/COMMIT), with
psql's `\\ir` includes expanded. A script that is one transaction (BEGIN first,
COMMIT last) is sent in one piece; any other script runs statement by statement, as
psql runs it, so it may hold several transactions, `CREATE INDEX CONCURRENTLY`, a
`DO` block that commits between batches, and psql's `\\gexec` (each value of the
query's result is run as a statement). Deploy scripts are idempotent, so this path
and Sqitch can follow each other in any order. It keeps no registry of its own:
Sqitch's registry (schema `sqitch`) is Sqitch's alone.
"""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from alerts.db import one_line
from alerts.errors import AlertsError
from alerts.locks import MIGRATE_LOCK_NAME, lock_key


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
MIN_SERVER_VERSION_NUM = 150000  # the oldest PostgreSQL the test suite runs on (CI: 15 and 18)
_CHANGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Change:
    name: str
    deploy_script: Path

    @property
    def script(self) -> str:
        """The scripts' file name without .sql: the change's name, or name@tag for a version reworked later."""
        return self.deploy_script.stem

    @property
    def superseded(self) -> bool:
        """Whether a later version of the change follows in the plan (this is a name@tag script)."""
        return self.script != self.name

    @property
    def verify_script(self) -> Path:
        return self.deploy_script.parent.parent / "verify" / f"{self.script}.sql"


@dataclass(frozen=True)
class Statement:
    """One statement of a script; with gexec, each value of its result is run as a statement too."""
    sql: str
    gexec: bool = False


def read_plan(plan_file: Path = PLAN_FILE) -> list[Change]:
    """The plan's changes in order; pragmas and comments are ignored. A change that is reworked
    later in the plan appears once per version, as Sqitch deploys it: each earlier version runs
    the scripts named for a tag between it and its next version (deploy/name@tag.sql, the first
    such tag whose file exists, as Sqitch looks for it), the last one deploy/name.sql."""
    entries: list[tuple[str, int]] = []
    tags_after: dict[int, list[str]] = {}  # index in entries -> the tags that follow it, in order
    for number, raw in enumerate(plan_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("%", "#")):
            continue
        if line.startswith("@"):
            for index in range(len(entries)):
                tags_after.setdefault(index, []).append(line.split()[0])
            continue
        name = line.split()[0]
        if not _CHANGE_NAME.match(name):
            raise AlertsError(f"{plan_file}:{number}: cannot read change name {name!r}")
        entries.append((name, number))
    deploy_dir = plan_file.parent / "deploy"
    changes: list[Change] = []
    for index, (name, number) in enumerate(entries):
        later = [i for i in range(index + 1, len(entries)) if entries[i][0] == name]
        if not later:
            changes.append(Change(name, deploy_dir / f"{name}.sql"))
            continue
        between = [tag for tag in tags_after.get(index, []) if tag not in tags_after.get(later[0], [])]
        if not between:
            raise AlertsError(f"{plan_file}:{number}: change {name!r} is reworked later but no tag follows it; "
                              "tag the plan before reworking (sqitch tag)")
        existing = [tag for tag in between if (deploy_dir / f"{name}{tag}.sql").exists()]
        changes.append(Change(name, deploy_dir / f"{name}{(existing or between)[0]}.sql"))
    return changes


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


def verifies(conn: psycopg.Connection, change: Change) -> bool:
    """Whether the change's verify script passes now (run in a transaction that is rolled back)."""
    conn.execute("BEGIN")
    try:
        for statement in split_statements(load_script(change.verify_script)):
            conn.execute(statement.sql.encode("utf-8"))
        return True
    except psycopg.Error:
        return False
    finally:
        conn.execute("ROLLBACK")


@contextmanager
def migrate_lock(conn: psycopg.Connection, poll_seconds: float = 0.2) -> Iterator[None]:
    """Hold alerts_v2_migrate while the scripts run on conn: a transaction-scoped lock, taken by
    polling on a connection of its own and held in its open transaction. Transaction-scoped, so a
    transaction pooler (PgBouncer) can neither strand it on a server connection nor release it
    early; polled and idle in between, so the lock's session holds no snapshot, which CREATE INDEX
    CONCURRENTLY on conn would otherwise wait for (a session blocked in pg_advisory_lock() holds
    one all the while: the two would deadlock)."""
    take = sql.SQL("SELECT pg_try_advisory_xact_lock({})").format(sql.Literal(lock_key(MIGRATE_LOCK_NAME)))
    with psycopg.connect(conn.info.dsn, password=conn.info.password, prepare_threshold=None,
                         application_name="alerts_v2_migrate") as lock_conn:
        while not lock_conn.execute(take).fetchone()[0]:  # type: ignore[index]
            lock_conn.rollback()
            time.sleep(poll_seconds)
        try:
            yield
        finally:
            lock_conn.rollback()


def require_supported_server(version_num: int) -> None:
    """Refuse a server older than PostgreSQL 15 (version_num as in server_version_num, e.g. 150020)."""
    if version_num < MIN_SERVER_VERSION_NUM:
        found = f"{version_num // 10000}.{version_num % 10000}"
        raise AlertsError(f"PostgreSQL {found} is not supported: the schema needs PostgreSQL "
                          f"{MIN_SERVER_VERSION_NUM // 10000} or newer (15 to 18 are tested); upgrade the server")


def deploy(conn: psycopg.Connection, *, dry_run: bool = False) -> dict[str, object]:
    """Apply every change of the plan; with dry_run only list them. Serialised by an advisory lock."""
    if not PLAN_FILE.is_file():
        raise AlertsError(f"{PLAN_FILE} is missing: run from a checkout of the repository or reinstall alerts-v2")
    require_supported_server(conn.info.server_version)
    changes = read_plan()
    scripts = [(change, load_script(change.deploy_script)) for change in changes]
    names = [change.name for change in changes]
    if dry_run:
        return {"migrate": "dry_run", "would_apply": names}
    conn.autocommit = True
    with migrate_lock(conn):
        current = {change.name for change in changes if not change.superseded and change.name in
                   {c.name for c in changes if c.superseded} and verifies(conn, change)}
        for change, script in scripts:
            if change.superseded and change.name in current:
                continue  # its newest version is deployed: running an older one would take it back
            try:
                run_script(conn, script)
            except psycopg.Error as error:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise AlertsError(f"migration {change.name} failed: {one_line(error)}") from None
    return {"migrate": "ok", "applied": names}
