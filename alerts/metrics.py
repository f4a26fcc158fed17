"""Prometheus metrics: the one registry and every family the runner exports.

    runner.py --watch with ALERTS_METRICS_PORT=N  serves /metrics on ALERTS_METRICS_ADDR (127.0.0.1)
    a cron run with ALERTS_METRICS_TEXTFILE=path  writes the same families when it ends, atomically
                                                   (node_exporter's textfile collector format)

Counters and histograms count what this process did: in a watcher since it started, in a cron
run's textfile that run alone (their help text says so). Gauges of the queue and the watchers'
heartbeats are read from the database (alerts_status(), alerts_watch_status()) when the metrics
are collected: at each scrape, or when the textfile is written. Labels are few and bounded:
channel, outcome, class, phase, result, watcher name; never a user, a destination or an event.

The hot path (one message) costs one counter increment on a label child looked up once; the
rest is counted per batch, per phase or per provider request.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import ThreadingHTTPServer

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.errors import AlertsError, UsageError

log = logging.getLogger("alerts.metrics")

RUN_NOTE = (" In a cron run's textfile (ALERTS_METRICS_TEXTFILE): that run's own count, not a running total;"
            " served by a watcher (ALERTS_METRICS_PORT): since the watcher started.")
DEFAULT_ADDR = "127.0.0.1"

disable_created_metrics()  # no *_created series: a counter's start time is noise on a dashboard
REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "alerts_messages", "Messages (instant deliveries and digests) by channel and outcome: sent (the provider "
    "took it), failed (permanently), retry (requeued after a transient failure), skipped (unusable destination "
    "or empty digest)." + RUN_NOTE, ["channel", "outcome"], registry=REGISTRY)
PROVIDER_LATENCY = Histogram(
    "alerts_provider_request_duration_seconds", "Time a real provider (SMTP, Brevo, Telegram, Twilio) took to "
    "answer one message, by channel." + RUN_NOTE, ["channel"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0))
PROVIDER_ERRORS = Counter(
    "alerts_provider_errors", "Messages a provider did not take, by channel and class: permanent (never "
    "retried), transient (retried later), throttled (too many requests), unreachable (no answer)." + RUN_NOTE,
    ["channel", "class"], registry=REGISTRY)
RATE_LIMIT_HOLDS = Counter(
    "alerts_rate_limit_holds", "Times a channel was held because its provider asked us to wait or could not be "
    "reached (its messages stay queued meanwhile)." + RUN_NOTE, ["channel"], registry=REGISTRY)
STALE_OUTCOMES = Counter(
    "alerts_stale_outcomes", "Outcomes that changed nothing because the row had been claimed again after its "
    "lease ended; outcome sent among them means a message that may go out twice." + RUN_NOTE,
    ["outcome"], registry=REGISTRY)
PHASE_RUNS = Counter(
    "alerts_phase_runs", "Phase runs by phase and result: ok, skipped (another process held the phase's lock), "
    "failed." + RUN_NOTE, ["phase", "result"], registry=REGISTRY)
PHASE_DURATION = Histogram(
    "alerts_phase_duration_seconds", "Duration of a phase run (a watcher: of each phase of a pass)." + RUN_NOTE,
    ["phase"], registry=REGISTRY, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))
PHASE_LAST_SUCCESS = Gauge(
    "alerts_phase_last_success_timestamp_seconds", "When this process last finished a phase successfully "
    "(Unix time).", ["phase"], registry=REGISTRY)
ROWS_CREATED = Counter(
    "alerts_rows_created", "Rows created: phase a alert events, phase b deliveries, phase d digests." + RUN_NOTE,
    ["phase"], registry=REGISTRY)

_CREATED_KEY = {"a": "created", "b": "deliveries_created", "d": "digests_created"}

# (name, help, key in alerts_status())
QUEUE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("alerts_deliveries_due", "Queued instant deliveries due now (alerts_status().queued_due).", "queued_due"),
    ("alerts_deliveries_waiting_retry", "Queued instant deliveries waiting for their retry time.",
     "queued_waiting_retry"),
    ("alerts_deliveries_sending", "Deliveries claimed and being sent.", "sending"),
    ("alerts_deliveries_stuck_sending", "Deliveries in sending past their lease (their sender died or froze).",
     "stuck_sending"),
    ("alerts_oldest_due_age_seconds", "Age of the oldest due queued delivery, in seconds (0 when none).",
     "oldest_due_age_seconds"),
    ("alerts_deliveries_failed_last_24h", "Deliveries that failed permanently in the last 24 hours.",
     "failed_last_24h"),
    ("alerts_events_waiting_fanout", "Alert events not fanned out yet (within the lookback window).",
     "events_waiting_fanout"),
    ("alerts_oldest_waiting_fanout_age_seconds", "Age of the oldest alert event waiting for fanout, in seconds.",
     "oldest_waiting_fanout_age_seconds"),
)
HEARTBEAT_FAMILY = "alerts_watcher_last_heartbeat_timestamp_seconds"
DATABASE_UP_FAMILY = "alerts_database_up"
DATABASE_PREFIXES = tuple(name for name, _, _ in QUEUE_GAUGES) + (HEARTBEAT_FAMILY, DATABASE_UP_FAMILY)


class DatabaseGauges(Collector):
    """The queue and heartbeat gauges, read from the database when collected, on a connection of
    their own (a scrape runs on the HTTP server's thread). A database that does not answer gives
    alerts_database_up 0 and no queue gauges, never a failed scrape."""

    def __init__(self, url: str, connect: Callable[[str], psycopg.Connection]) -> None:
        self._url = url
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # read on collect only: registering must not touch the database

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up_help = "1 when the queue gauges could be read from the database at this collection, else 0."
        status: Mapping[str, object] | None
        watchers: list[tuple[str, float]]
        with self._lock:  # one scrape at a time on the one connection
            try:
                status, watchers = self._read()
            except (psycopg.Error, AlertsError) as error:
                log.warning("metrics: could not read the queue gauges: %s", " ".join(str(error).split()))
                self.close()
                status, watchers = None, []
        yield GaugeMetricFamily(DATABASE_UP_FAMILY, up_help, value=0 if status is None else 1)
        if status is None:
            return
        for name, help_text, key in QUEUE_GAUGES:
            value = status.get(key)
            if isinstance(value, int | float):
                yield GaugeMetricFamily(name, help_text, value=float(value))
        heartbeats = GaugeMetricFamily(HEARTBEAT_FAMILY, "Last heartbeat of each running watcher "
                                       "(alerts_watchers, Unix time), by watcher name.", labels=["watcher"])
        for name, beaten_at in watchers:
            heartbeats.add_metric([name], beaten_at)
        yield heartbeats

    def _read(self) -> tuple[Mapping[str, object], list[tuple[str, float]]]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(self._url)
        row = self._conn.execute("SELECT alerts_status()").fetchone()
        status: Mapping[str, object] = row[0] if row else {}
        watchers = self._conn.execute(
            "SELECT w ->> 'name', extract(epoch FROM (w ->> 'heartbeat_at')::timestamptz)::float8"
            "  FROM jsonb_array_elements(alerts_watch_status(interval '1 hour') -> 'watchers') w"
            " WHERE w ->> 'status' = 'running'"
            " ORDER BY 1").fetchall()
        return status, [(str(name), float(at)) for name, at in watchers]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_database_gauges: DatabaseGauges | None = None


def attach_database(url: str, connect: Callable[[str], psycopg.Connection]) -> None:
    """Read the queue gauges from this database when the metrics are collected (once per process)."""
    global _database_gauges
    if _database_gauges is None:
        _database_gauges = DatabaseGauges(url, connect)
        REGISTRY.register(_database_gauges)


# ---------------------------------------------------------------------- what the code counts

_message_children: dict[tuple[str, str], Counter] = {}


def message(channel: str, outcome: str, n: int = 1) -> None:
    """n messages of channel came to outcome (sent, failed, retry, skipped)."""
    child = _message_children.get((channel, outcome))
    if child is None:
        child = _message_children.setdefault((channel, outcome), MESSAGES.labels(channel, outcome))
    child.inc(n)


def provider_answered(channel: str, seconds: float, error_class: str | None) -> None:
    PROVIDER_LATENCY.labels(channel).observe(seconds)
    if error_class is not None:
        PROVIDER_ERRORS.labels(channel, error_class).inc()


def channel_held(channel: str) -> None:
    RATE_LIMIT_HOLDS.labels(channel).inc()


def stale(outcome: str, n: int) -> None:
    STALE_OUTCOMES.labels(outcome).inc(n)


def phase_done(phase: str, counts: Mapping[str, object] | None, seconds: float, failed: bool = False) -> None:
    """A phase run ended: its result, its duration, the rows it created (counts None: it raised)."""
    result = "failed" if failed or counts is None else "skipped" if counts.get("skipped") is True else "ok"
    PHASE_RUNS.labels(phase, result).inc()
    PHASE_DURATION.labels(phase).observe(seconds)
    if result == "ok":
        PHASE_LAST_SUCCESS.labels(phase).set(time.time())
    created = counts.get(_CREATED_KEY.get(phase, "")) if counts else None
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        ROWS_CREATED.labels(phase).inc(created)


# ---------------------------------------------------------------------- exporting


def exported_series() -> set[str]:
    """Every series name this module exports (what a dashboard or a rule may name): the families'
    samples (a counter's _total, a histogram's _bucket, _count and _sum) and the database gauges."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = {family.name + suffix for family in REGISTRY.collect() if not family.name.startswith(DATABASE_PREFIXES)
             for suffix in suffixes[family.type]}
    return names | {name for name, _, _ in QUEUE_GAUGES} | {HEARTBEAT_FAMILY, DATABASE_UP_FAMILY}



def http_settings(env: Mapping[str, str]) -> tuple[str, int] | None:
    """(address, port) from ALERTS_METRICS_ADDR / ALERTS_METRICS_PORT; None when no port is set."""
    raw = env.get("ALERTS_METRICS_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise UsageError(f"ALERTS_METRICS_PORT must be a TCP port number (0-65535), got {raw!r}")
    return env.get("ALERTS_METRICS_ADDR", "").strip() or DEFAULT_ADDR, int(raw)


def textfile_path(env: Mapping[str, str]) -> str | None:
    """ALERTS_METRICS_TEXTFILE: where a cron run writes its metrics; its folder must exist."""
    path = env.get("ALERTS_METRICS_TEXTFILE", "").strip()
    if not path:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"ALERTS_METRICS_TEXTFILE: folder {folder} does not exist")
    if not path.endswith(".prom"):
        raise UsageError(f"ALERTS_METRICS_TEXTFILE must end in .prom (node_exporter reads only those), got {path!r}")
    return path


def serve(address: str, port: int) -> ThreadingHTTPServer:
    """Serve /metrics from a daemon thread; returns the server (its port when 0 was asked)."""
    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    log.info("metrics on http://%s:%s/metrics", address, server.server_port)
    return server


def write_textfile(path: str) -> None:
    """Write every family to path: a temporary file in the same folder, then a rename."""
    write_to_textfile(path, REGISTRY)
