#!/usr/bin/env python3
"""Runs `sqitch COMMAND [ARGS...] TARGET` against the database it is told to, never libpq's default.

    scripts/sqitch_target.py deploy --verify      # what `make sqitch-deploy` runs
    scripts/sqitch_target.py --print revert -y    # show the command (no password), run nothing
    scripts/sqitch_target.py --check              # exit 2 with one line when no target is set

TARGET is SQITCH_TARGET (a db:pg: URI or a target named in sqitch.conf), else DATABASE_URL
rewritten as a db:pg: URI; with neither, or a DATABASE_URL without a database name, it refuses
with one line and exit 2. A password in DATABASE_URL goes to sqitch as PGPASSWORD, never on its
command line. Standard library only: it runs before any virtualenv exists.
"""

import os
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

EXIT_USAGE = 2
WHAT_TO_SET = ("set SQITCH_TARGET=db:pg://user@host:5432/dbname or "
               "DATABASE_URL=postgresql://user@host:5432/dbname")


class NoTarget(Exception):
    """Why no target could be chosen; one line."""


def target_from_env(env: dict[str, str]) -> tuple[str, str | None]:
    """(sqitch target, password or None) from SQITCH_TARGET, else DATABASE_URL."""
    explicit = env.get("SQITCH_TARGET", "").strip()
    if explicit:
        return explicit, None
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        raise NoTarget(f"no database to run sqitch against: {WHAT_TO_SET}")
    return database_url_target(url)


def database_url_target(url: str) -> tuple[str, str | None]:
    """postgresql://user:pass@host:port/db?opts -> (db:pg://user@host:port/db?opts, pass)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NoTarget(f"DATABASE_URL is not a postgresql:// URL: {WHAT_TO_SET}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise NoTarget(f"DATABASE_URL must start with postgresql://: {WHAT_TO_SET}")
    if not parts.path.strip("/"):
        raise NoTarget(f"DATABASE_URL names no database (libpq would pick a default): {WHAT_TO_SET}")
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if netloc:
        target = "db:pg:" + urlunsplit(("", netloc, parts.path, parts.query, ""))
    else:  # postgresql:///app: a local socket, as libpq's default host
        target = "db:pg:" + urlunsplit(("", "", parts.path.lstrip("/"), parts.query, ""))
    password = unquote(parts.password) if parts.password is not None else None
    return target, password


def main(argv: list[str]) -> int:
    show_only = bool(argv) and argv[0] == "--print"
    check_only = bool(argv) and argv[0] == "--check"
    args = argv[1:] if show_only or check_only else argv
    try:
        target, password = target_from_env(dict(os.environ))
    except NoTarget as error:
        print(f"sqitch_target.py: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if check_only:
        return 0
    if not args:
        print("sqitch_target.py: error: give a sqitch command, e.g. deploy --verify", file=sys.stderr)
        return EXIT_USAGE
    command = ["sqitch", *args, target]
    if show_only:
        print(" ".join(command))
        return 0
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    try:
        os.execvpe("sqitch", command, env)
    except OSError as error:
        print(f"sqitch_target.py: error: cannot run sqitch: {error.strerror}; "
              "scripts/ensure_system_packages.sh installs it", file=sys.stderr)
        return 1
    return 0  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
