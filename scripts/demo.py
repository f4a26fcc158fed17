#!/usr/bin/env python3
"""The whole pipeline once, on demo data: `make demo`.

    python scripts/demo.py [--outbox PATH] [--allow-existing-data]

With DATABASE_URL set it uses that database and drops nothing; otherwise it starts a
throwaway PostgreSQL (devtools/embedded_pg.py) and removes it afterwards. Then it deploys
the schema (`runner.py --migrate`), seeds db/demo/seed.sql, runs `runner.py --phase all`
with ALERTS_SENDER=file:OUTBOX (a fresh file each run) and shows what was sent.

The runner's JSON counts and the summary go to stdout; logs go to stderr.
Exit codes: 0 done, 1 failure, 2 bad usage or a database the demo must not touch.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts.cli import run_command  # noqa: E402
from alerts.db import connect, one_line  # noqa: E402
from alerts.errors import EXIT_OK, AlertsError, UsageError  # noqa: E402
from alerts.secrets import mask_url  # noqa: E402
from devtools.embedded_pg import embedded_server  # noqa: E402

log = logging.getLogger("alerts.demo")

RUNNER = ROOT / "runner.py"
SEED_FILE = ROOT / "db" / "demo" / "seed.sql"
DEFAULT_OUTBOX = ROOT / "var" / "demo-outbox.jsonl"
DEMO_EMAIL_DOMAIN = "@demo.example"
RUNNER_TIMEOUT = 300


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"demo.py: error: {message} (see --help)\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(description="Deploy, seed demo data, run phases A, B and C, and show the outbox.")
    parser.add_argument("--outbox", type=Path, default=DEFAULT_OUTBOX,
                        help="JSON-lines file the messages go to, recreated each run (default var/demo-outbox.jsonl)")
    parser.add_argument("--allow-existing-data", action="store_true",
                        help="run even though DATABASE_URL's database has users that are not demo users "
                             "(their queued alerts would be 'sent' into the outbox)")
    return parser.parse_args(argv)


@contextmanager
def demo_database() -> Iterator[tuple[str, bool]]:
    """(url, embedded): DATABASE_URL when set, else a throwaway embedded server."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        log.info("using DATABASE_URL %s (nothing will be dropped)", mask_url(url))
        yield url, False
        return
    log.info("DATABASE_URL is not set: starting an embedded PostgreSQL")
    with embedded_server() as embedded_url:
        yield embedded_url, True


def refuse_foreign_data(url: str) -> None:
    """Stop before touching a database whose users are not all demo users."""
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return
        row = conn.execute("SELECT count(*) FROM users WHERE email IS NULL OR email NOT LIKE %s",
                           [f"%{DEMO_EMAIL_DOMAIN}"]).fetchone()
    others = int(row[0]) if row else 0
    if others:
        raise UsageError(
            f"the database has {others} user(s) that are not demo users ({DEMO_EMAIL_DOMAIN}): the demo's Phase C "
            "would put their queued alerts in the outbox and mark them sent; use a scratch database, unset "
            "DATABASE_URL for an embedded one, or pass --allow-existing-data"
        )


def run_runner(url: str, args: list[str], outbox: Path | None = None) -> list[dict[str, object]]:
    """Run runner.py as a subprocess; return the JSON objects it printed, or raise with its error line."""
    env = {**os.environ, "DATABASE_URL": url}
    if outbox is not None:
        env["ALERTS_SENDER"] = f"file:{outbox}"
    process = subprocess.Popen([sys.executable, str(RUNNER), *args], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=RUNNER_TIMEOUT)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        stop_child(process)
        raise
    for line in stderr.splitlines():
        log.debug("runner: %s", line)
    if process.returncode != 0:
        reason = last_line(stderr) or f"exit code {process.returncode}"
        raise AlertsError(f"runner.py {' '.join(args)} failed: {reason}")
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def stop_child(process: subprocess.Popen[str]) -> None:
    """SIGTERM first, so the runner can release what it claimed; SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def seed(url: str) -> None:
    sql = SEED_FILE.read_text(encoding="utf-8")
    with connect(url) as conn:
        try:
            conn.execute(sql.encode("utf-8"))
        except Exception as error:
            raise AlertsError(f"seeding {SEED_FILE.relative_to(ROOT)} failed: {one_line(error)}") from None


def fresh_outbox(path: Path) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def read_outbox(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def message_order(message: dict[str, object]) -> tuple[str, str, str]:
    """By user, then channel, then delivery id (numeric ids compare as numbers)."""
    return (f"{message.get('user_id')!s:>12}", str(message["channel"]), f"{message['delivery_id']!s:>12}")


def summary(messages: list[dict[str, object]], outbox: Path) -> list[str]:
    """Readable lines: totals, then one line per message, grouped by user."""
    where = display_path(outbox)
    if not messages:
        return ["", f"Nothing was sent (outbox {where} is empty): everything due was delivered by an earlier run."]
    channels = Counter(str(m["channel"]) for m in messages)
    users = {m.get("user_id") for m in messages}
    by_channel = ", ".join(f"{name} {count}" for name, count in sorted(channels.items()))
    lines = ["", f"Sent {len(messages)} message(s) to {len(users)} user(s) ({by_channel}); outbox: {where}", ""]
    ordered = sorted(messages, key=message_order)
    width = max(len(str(m["destination"])) for m in ordered)
    lines.append(f"  {'CHANNEL':<9} {'DESTINATION':<{width}}  SUBJECT (or first line)")
    lines += [f"  {m['channel']!s:<9} {m['destination']!s:<{width}}  {headline_of(m)}" for m in ordered]
    return lines


def headline_of(message: dict[str, object]) -> str:
    """The subject, or for a message without one (Telegram, SMS) the first line of its text."""
    if message.get("subject"):
        return str(message["subject"])
    return next((line.strip() for line in str(message.get("body") or "").splitlines() if line.strip()), "")


def run(args: argparse.Namespace) -> int:
    outbox = fresh_outbox(args.outbox)
    with demo_database() as (url, embedded):
        if not embedded and not args.allow_existing_data:
            refuse_foreign_data(url)
        migrated = run_runner(url, ["--migrate"])
        log.info("schema deployed: %s", ", ".join(map(str, migrated[0].get("applied", []))) if migrated else "?")
        seed(url)
        log.info("demo data seeded from %s", SEED_FILE.relative_to(ROOT))
        counts = run_runner(url, ["--phase", "all"], outbox=outbox)
    for phase in counts:
        print(json.dumps(phase, sort_keys=True))
    for line in summary(read_outbox(outbox), outbox):
        print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("demo.py", args, run)


if __name__ == "__main__":
    sys.exit(main())
