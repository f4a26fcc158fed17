#!/usr/bin/env python3
"""Alerts v2 runner: calls the pipeline's stored functions and sends Phase C's messages.

    python runner.py --phase a|b|c|d|all [--dry-run] [--batch-size N]
    python runner.py --migrate [--dry-run | --check]   # --check: exit 1 while changes are pending
    python runner.py --status        # queue health as JSON; exit 1 when a threshold is crossed
    python runner.py --prune         # delete sent/skipped deliveries and runs older than the retention
    python runner.py --watch         # long-running: run the phases as soon as rows arrive (docs/watch-mode.md)
    python runner.py --explain USER_ID ALERT_EVENT_ID   # why a user gets an alert or not (alerts_explain())

Metrics (docs/monitoring.md): ALERTS_METRICS_PORT serves /metrics from a watcher; ALERTS_METRICS_TEXTFILE
is where a cron run writes them when it ends (node_exporter's textfile collector).

Prints one JSON object per phase on stdout; logs go to stderr.
Exit codes: 0 success or lock skip, 1 failure, 2 bad usage or configuration, 3 stopped by
SIGTERM/SIGINT (in-flight sends finished, every outcome recorded), 4 a provider could not take
messages this run (they stay queued for the next one), 5 the database stopped a statement
(statement_timeout, lock_timeout, a cancel, a deadlock or serialization failure after 3 tries),
6 a database session ended mid-run (connection lost, server restart, pg_terminate_backend).
After 5 and 6 nothing is lost and the next run goes on; the error line starts with the kind.
"""

import argparse
import json
import logging
import os
import sys
from typing import NoReturn

import psycopg

from alerts import metrics, migrate
from alerts.cli import run_command
from alerts.database_url import validate_database_url
from alerts.db import check_schema, connect
from alerts.delivery import DEFAULT_BATCH_SIZE
from alerts.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_STOPPED,
    AlertsError,
    ChannelUnavailableError,
    UsageError,
)
from alerts.failures import failure_from_text, halved_after_timeout
from alerts.history import recorded, run_error
from alerts.message_settings import current_settings
from alerts.phases import dry_run_all, run_phase_c, run_sql_phase
from alerts.senders import build_sender, channels
from alerts.shutdown import DEFAULT_GRACE_SECONDS, STOP
from alerts.status import status_report
from alerts.unsubscribe import secret_from_env, store_secret, warn_if_secret_differs
from alerts.watch import settings_from_env, watch

log = logging.getLogger("alerts")

PHASE_ORDER = {"a": ["a"], "b": ["b"], "c": ["c"], "d": ["d"], "all": ["a", "b", "d", "c"]}
DEFAULT_MAX_SEND = 1000
WATCH_MAX_SEND = 10_000  # per Phase C call of a watcher, which calls again at once while more are due
DEFAULT_RETENTION_DAYS = 90
MIGRATION_RUNNING = "migration_running"  # why a run skipped: a deploy holds alerts_v2_migrate, the schema is behind
PRUNE_BATCH = 5000  # rows a prune statement deletes; halved for the run when a statement_timeout cancels one


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"runner.py: error: {message} (see --help)\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(description="Run the Alerts v2 pipeline phases against DATABASE_URL.")
    parser.add_argument("--phase", choices=sorted(PHASE_ORDER),
                        help="which phase to run: a = source rows to alert events, b = alert events to "
                             "deliveries (fanout), d = digest deliveries to digests, c = send what is due; "
                             "all = a, b, d, then c")
    parser.add_argument("--dry-run", action="store_true",
                        help="change nothing, send nothing; report what a real run would do")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"deliveries claimed per batch in Phase C (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--migrate", action="store_true",
                        help="deploy the schema changes the database does not have yet (db/migrations) first")
    parser.add_argument("--check", action="store_true",
                        help="with --migrate: list the pending changes, deploy nothing; exit 1 when any are pending")
    parser.add_argument("--status", action="store_true",
                        help="print queue health as JSON; exit 1 when a threshold is crossed")
    parser.add_argument("--preflight", action="store_true",
                        help="check the database, the schema and each channel's settings; send nothing")
    parser.add_argument("--prune", action="store_true",
                        help="delete sent/skipped deliveries and finished runs older than ALERTS_RETENTION_DAYS")
    parser.add_argument("--watch", action="store_true",
                        help="run until stopped: the phases as soon as rows arrive (LISTEN), and on a poll")
    parser.add_argument("--explain", nargs=2, type=int, metavar=("USER_ID", "ALERT_EVENT_ID"),
                        help="print alerts_explain(): whether the user is eligible for the alert event, every "
                             "rule that decided it, and the deliveries made")
    args = parser.parse_args(argv)
    if args.check and not args.migrate:
        parser.error("--check goes with --migrate: `runner.py --migrate --check`")
    if not (args.phase or args.migrate or args.status or args.prune or args.preflight or args.watch
            or args.explain):
        parser.error("nothing to do: give --phase a|b|c|d|all, --watch, --migrate, --status, --prune, --preflight "
                     "or --explain")
    if args.explain and (args.phase or args.watch or args.status or args.prune or args.preflight or args.migrate):
        parser.error("--explain runs alone")
    if args.watch and (args.phase or args.dry_run or args.status or args.prune or args.preflight):
        parser.error("--watch runs every phase itself; combine it with --migrate or --batch-size only")
    if args.check and (args.phase or args.dry_run or args.status or args.prune or args.preflight or args.watch):
        parser.error("--migrate --check only reports pending changes; run it on its own")
    if args.batch_size is not None and not 1 <= args.batch_size <= 10000:
        parser.error(f"--batch-size must be between 1 and 10000, got {args.batch_size}")
    return args


def positive_int_env(name: str, default: int) -> int:
    value = int_env(name, default, minimum=1)
    assert value is not None
    return value


def int_env(name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"{name} must be {kind}, got {raw!r}")
    return int(raw)


def positive_float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def fail_on_phase_c_problem(counts: dict[str, object]) -> None:
    """Phase C's counts are printed; a run that left work undone still exits non-zero."""
    error = run_error(counts)
    if counts.get("stopped_by") and not counts.get("error"):
        log.warning("phase c stopped by %s: every outcome recorded, %s unsent rows released",
                    counts["stopped_by"], counts.get("released"))
    elif counts.get("channels_unavailable") and not (counts.get("error") or counts.get("channels_not_configured")):
        raise ChannelUnavailableError(error)
    elif error:
        raise failure_from_text(error)  # a database failure exits with its kind's code


def database_url() -> str:
    return validate_database_url(os.environ.get("DATABASE_URL", "").strip())


def emit(counts: dict[str, object]) -> None:
    print(json.dumps(counts, sort_keys=True), flush=True)
    if counts.get("skipped") is True and counts.get("reason") == MIGRATION_RUNNING:
        log.info("skipped: a --migrate is deploying changes this release needs; the next run goes on")
    elif counts.get("skipped") is True:
        log.info("phase %s skipped: its lock is held by another run", counts.get("phase"))


def schema_ready(conn: psycopg.Connection) -> bool:
    """Whether the schema this release calls is deployed. While a --migrate deploys it, False (the
    run skips, exit 0); with no deploy running, the one-line error of check_schema()."""
    try:
        check_schema(conn)
    except AlertsError:
        if migrate.migration_running(conn):
            return False
        check_schema(conn)  # a deploy that ended just now has made it whole; otherwise the error stands
    return True


def run(args: argparse.Namespace) -> int:
    """The command; a cron run with ALERTS_METRICS_TEXTFILE writes its metrics when it ends, also when it
    failed (its failed phase counted)."""
    url = database_url()
    textfile = None if args.watch or args.explain else metrics.textfile_path(os.environ)
    if textfile is None:
        return run_command_of(args, url)
    metrics.attach_database(url, connect)
    try:
        return run_command_of(args, url)
    finally:
        try:
            metrics.write_textfile(textfile)
        except OSError as error:
            log.error("could not write the metrics to ALERTS_METRICS_TEXTFILE=%s: %s", textfile, error)


def explain(url: str, user_id: int, alert_event_id: int) -> int:
    """Print alerts_explain(user_id, alert_event_id) as JSON."""
    with connect(url) as conn:
        check_schema(conn)
        row = conn.execute("SELECT alerts_explain(%s, %s)", [user_id, alert_event_id]).fetchone()
    emit(row[0] if row else {})
    return EXIT_OK


def run_command_of(args: argparse.Namespace, url: str) -> int:
    batch_size = args.batch_size or positive_int_env("ALERTS_BATCH_SIZE", DEFAULT_BATCH_SIZE)
    max_send = positive_int_env("ALERTS_MAX_SEND_PER_RUN", WATCH_MAX_SEND if args.watch else DEFAULT_MAX_SEND)
    phases = PHASE_ORDER[args.phase] if args.phase else []
    sends = args.watch or ("c" in phases and not args.dry_run)
    sender = build_sender(os.environ.get("ALERTS_SENDER")) if sends else None
    if sender is not None:
        current_settings()  # ALERTS_PREFERENCES_URL and the unsubscribe link checked before anything is claimed
    unsubscribe_secret = secret_from_env(os.environ)

    if args.preflight:
        return preflight(url)
    if args.explain:
        return explain(url, *args.explain)
    if args.watch:
        assert sender is not None
        serving = metrics.http_settings(os.environ)
        if serving is not None:
            metrics.attach_database(url, connect)
            server = metrics.serve(*serving)
        try:
            with connect(url) as conn:
                if args.migrate:
                    emit({**migrate.deploy(conn), **store_secret(conn, unsubscribe_secret)})
                warn_if_secret_differs(conn, unsubscribe_secret)
            grace = positive_float_env("ALERTS_STOP_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)
            emit(watch(settings_from_env(url, batch_size, max_send), sender, grace))
        finally:
            sender.close()
            if serving is not None:
                server.shutdown()
        return EXIT_STOPPED
    with connect(url) as conn:
        if args.migrate and args.check:
            report = migrate.check(conn)
            emit(report)
            return EXIT_FAILURE if report["pending"] else EXIT_OK
        if args.migrate:
            deployed = migrate.deploy(conn, dry_run=args.dry_run)
            emit(deployed if args.dry_run else {**deployed, **store_secret(conn, unsubscribe_secret)})
        if not (phases or args.status or args.prune):
            return EXIT_OK
        if not schema_ready(conn):
            emit({"skipped": True, "reason": MIGRATION_RUNNING, "phases": phases})
            return EXIT_OK
        warn_if_secret_differs(conn, unsubscribe_secret)
        if args.prune:
            emit(prune(conn, positive_int_env("ALERTS_RETENTION_DAYS", DEFAULT_RETENTION_DAYS), args.dry_run))
        if args.dry_run:
            for counts in dry_run_all(url, phases, max_send):
                emit(counts)
            return EXIT_OK
        STOP.install(positive_float_env("ALERTS_STOP_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
        for phase in phases:
            if STOP.requested:
                log.warning("stopped by %s before phase %s", STOP.signal_name, phase)
                return EXIT_STOPPED
            if phase == "c":
                assert sender is not None
                try:
                    counts = recorded(url, conn, "c", lambda: run_phase_c(url, sender, batch_size, max_send))
                except KeyboardInterrupt:
                    raise  # stopped at once: no polite goodbye to a provider that is still answering
                except BaseException:
                    sender.close()
                    raise
                sender.close()
                emit(counts)
                fail_on_phase_c_problem(counts)
            else:
                emit(recorded(url, conn, phase, lambda phase=phase: run_sql_phase(conn, phase)))
        if STOP.requested:
            return EXIT_STOPPED
        if args.status:
            report = status_report(conn, int_env)
            emit(report)
            return EXIT_OK if report["healthy"] else EXIT_FAILURE
    return EXIT_OK


def preflight(url: str) -> int:
    """Database reachable, schema deployed, every channel's settings well-formed; nothing sent."""
    one_click = current_settings().unsubscribe
    report: dict[str, object] = {"preflight": "ok", "sender": os.environ.get("ALERTS_SENDER") or "providers",
                                 "channels": channels.check_config(os.environ),
                                 "preferences_url": current_settings().preferences_url,
                                 "unsubscribe_url": one_click.url if one_click else None}
    with connect(url) as conn:
        check_schema(conn)
        row = conn.execute("SELECT current_database(), current_setting('server_version')").fetchone()
        report["database"], report["server_version"] = row if row else (None, None)
    build_sender(os.environ.get("ALERTS_SENDER"))  # the same checks a real phase C makes
    emit(report)
    return EXIT_OK


def prune(conn: psycopg.Connection, retention_days: int, dry_run: bool) -> dict[str, object]:
    """Delete old finished rows batch by batch, each batch its own transaction."""
    if dry_run:
        return {"prune": "dry_run", "retention_days": retention_days}
    deleted = batches = 0
    batch = PRUNE_BATCH
    while True:
        try:
            row = conn.execute("SELECT alerts_prune(make_interval(days => %s), %s)", [retention_days, batch]).fetchone()
        except psycopg.errors.QueryCanceled as error:
            batch = halved_after_timeout(error, batch, "prune")
            continue
        batches += 1
        if not row or row[0] == 0:
            return {"prune": "ok", "retention_days": retention_days, "deleted": deleted, "batches": batches}
        deleted += int(row[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("runner.py", args, run, interrupted="interrupted; claimed but unsent deliveries were released")


if __name__ == "__main__":
    sys.exit(main())
