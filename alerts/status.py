"""`runner.py --status`: alerts_status() plus the thresholds a monitor alarms on."""

from collections.abc import Callable

import psycopg

# (environment variable, key in alerts_status(), default limit; None = no limit by default)
THRESHOLDS: tuple[tuple[str, str, int | None], ...] = (
    ("ALERTS_STATUS_MAX_DUE_AGE_SECONDS", "oldest_due_age_seconds", 900),
    ("ALERTS_STATUS_MAX_STUCK", "stuck_sending", 0),
    ("ALERTS_STATUS_MAX_FAILED_24H", "failed_last_24h", None),
    ("ALERTS_STATUS_MAX_FANOUT_AGE_SECONDS", "oldest_waiting_fanout_age_seconds", None),
)


def status_report(conn: psycopg.Connection, limit_of: Callable[[str, int | None], int | None]) -> dict[str, object]:
    """The status object with a 'breaches' list naming every threshold crossed."""
    row = conn.execute("SELECT alerts_status()").fetchone()
    report: dict[str, object] = dict(row[0]) if row else {}
    breaches = []
    for variable, key, default in THRESHOLDS:
        limit = limit_of(variable, default)
        value = report.get(key)
        if limit is not None and isinstance(value, int | float) and value > limit:
            breaches.append(f"{key} is {value}, above {variable}={limit}")
    breaches.extend(failed_runs(report.get("last_runs")))
    breaches.extend(stalled_phases(conn, report.get("stalled_phases")))
    breaches.extend(watcher_breaches(conn, report, limit_of))
    report["suppression"] = suppression(conn)
    report["breaches"] = breaches
    report["healthy"] = not breaches
    return report


def suppression(conn: psycopg.Connection) -> dict[str, object]:
    """Suppressed destinations, unsubscribed users and the deliveries skipped for them
    (alerts_suppression_status()); empty before the schema has them."""
    deployed = conn.execute("SELECT to_regprocedure('alerts_suppression_status()') IS NOT NULL").fetchone()
    if not deployed or not deployed[0]:
        return {}
    row = conn.execute("SELECT alerts_suppression_status()").fetchone()
    return dict(row[0]) if row else {}


def failed_runs(last_runs: object) -> list[str]:
    """A breach per phase whose latest run failed (it exited non-zero: an error, a channel with no
    provider, a provider that could not take messages)."""
    if not isinstance(last_runs, dict):
        return []
    return [f"the last phase {phase} run failed: {str(run.get('error') or 'no reason recorded')[:300]}"
            for phase, run in sorted(last_runs.items()) if isinstance(run, dict) and run.get("status") == "failed"]


def stalled_phases(conn: psycopg.Connection, stalled: object) -> list[str]:
    """A breach per phase without a successful run for longer than alerts_config.max_phase_silence,
    naming the sessions that hold its advisory lock. alerts_status() sees them as the engine's owner
    (pid, role, application); what this login may see of them besides (a superuser or pg_read_all_stats:
    the client address and since when) is filled in here."""
    if not isinstance(stalled, list):
        return []
    breaches = []
    for phase in stalled:
        if not isinstance(phase, dict):
            continue
        holders = [holder for holder in phase.get("lock_holders") or [] if isinstance(holder, dict)]
        for holder in holders:
            seen = conn.execute("SELECT host(client_addr), backend_start, state_change FROM pg_stat_activity "
                                "WHERE pid = %s", [holder.get("pid")]).fetchone()
            if seen:
                for key, value in zip(("client_addr", "connected_at", "state_since"), seen, strict=True):
                    if holder.get(key) is None and value is not None:
                        holder[key] = str(value)
        named = "; ".join(describe_holder(holder) for holder in holders)
        breaches.append(f"phase {phase.get('phase')} has not completed successfully for "
                        f"{phase.get('silent_seconds')} s, above alerts_config.max_phase_silence "
                        f"({phase.get('limit_seconds')} s); "
                        + (f"its lock is held by {named}" if holders else "nobody holds its lock"))
    return breaches


def describe_holder(holder: dict) -> str:
    return (f"pid {holder.get('pid')} (role {holder.get('role')}, application {holder.get('application_name') or '-'}, "
            f"from {holder.get('client_addr') or 'a local socket or not visible'}, "
            f"connected at {holder.get('connected_at') or 'not visible'}, {holder.get('mode')})")


def watcher_breaches(conn: psycopg.Connection, report: dict[str, object],
                     limit_of: Callable[[str, int | None], int | None]) -> list[str]:
    """Add the watchers (runner.py --watch) to the report; a running watcher whose heartbeat is older
    than ALERTS_STATUS_MAX_WATCHER_SILENCE_SECONDS (default 300) is dead or stuck in one pass."""
    deployed = conn.execute("SELECT to_regprocedure('alerts_watch_status(interval)') IS NOT NULL").fetchone()
    if not deployed or not deployed[0]:
        return []
    limit = limit_of("ALERTS_STATUS_MAX_WATCHER_SILENCE_SECONDS", 300)
    row = conn.execute("SELECT alerts_watch_status(make_interval(secs => %s))", [limit]).fetchone()
    watch: dict[str, object] = dict(row[0]) if row else {}
    report["watchers"] = watch.get("watchers", [])
    silent = watch.get("silent") or []
    assert isinstance(silent, list)
    return [f"watcher {name} has sent no heartbeat for more than ALERTS_STATUS_MAX_WATCHER_SILENCE_SECONDS={limit} "
            "(dead, or stuck in one pass)" for name in silent]
