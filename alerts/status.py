"""`runner.py --status`: alerts_status() plus the thresholds a monitor alarms on."""

from collections.abc import Callable

import psycopg

# (environment variable, key in alerts_status(), default limit; None = no limit by default)
THRESHOLDS: tuple[tuple[str, str, int | None], ...] = (
    ("ALERTS_STATUS_MAX_DUE_AGE_SECONDS", "oldest_due_age_seconds", 900),
    ("ALERTS_STATUS_MAX_STUCK", "stuck_sending", 0),
    ("ALERTS_STATUS_MAX_FAILED_24H", "failed_last_24h", None),
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
    report["breaches"] = breaches
    report["healthy"] = not breaches
    return report


def failed_runs(last_runs: object) -> list[str]:
    """A breach per phase whose latest run failed (it exited non-zero: an error, a channel with no
    provider, a provider that could not take messages)."""
    if not isinstance(last_runs, dict):
        return []
    return [f"the last phase {phase} run failed: {str(run.get('error') or 'no reason recorded')[:300]}"
            for phase, run in sorted(last_runs.items()) if isinstance(run, dict) and run.get("status") == "failed"]
