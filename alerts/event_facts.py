"""The facts that make a message actionable, read from an alert event's source rows at send time.

alert_events holds what Phase A wrote (type, scope, severity, headline, body). A recipient also
needs when it happened, why it fired and where to read more: the driver event's time, category
and (when the host's events table has such columns) summary and source link; a spike's reading,
its time and the reading before it (the baseline); the thresholds of alerts_config. One
statement per claimed batch reads them for the events not seen yet in this run, and they are
kept per event, so the hot path costs one set look-up per batch.

Optional host columns are found once per run in information_schema and never required. A role
that may not read the tables (alerts_runner alone may only execute the engine's functions) gets
no facts: the messages then say what the claim returned, and one warning names the grant.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import psycopg
from psycopg import sql

from alerts.db import one_line
from alerts.message import NO_FACTS, EventFacts

log = logging.getLogger("alerts.event_facts")

CACHE_SIZE = 4096  # events whose facts a run keeps
TIME_TYPES = frozenset({"timestamp with time zone", "timestamp without time zone", "date"})
TEXT_TYPES = frozenset({"text", "character varying", "character"})
# fact -> (candidate columns of events in order of preference, accepted data types)
OPTIONAL_EVENT_COLUMNS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "occurred_at": (("occurred_at", "event_time", "event_at", "happened_at", "published_at"), TIME_TYPES),
    "summary": (("summary", "description"), TEXT_TYPES),
    "source_url": (("source_url", "url", "link", "source_link", "article_url"), TEXT_TYPES),
    "source_name": (("source_name", "source", "publisher"), TEXT_TYPES),
}
TABLES_READ = ("alert_events", "alerts_config", "events", "risk_indices", "asset_risk")
SUMMARY_MAX_CHARS = 600
URL_MAX_CHARS = 500


class Rows(Protocol):
    """What the loader needs of Phase C's database: alerts.delivery.Database."""

    def rows(self, sql: object, params: list) -> list[dict]: ...


FACTS_SQL = """
WITH wanted_alerts AS (
    SELECT ae.id, ae.alert_type, ae.scope_region, ae.scope_assets, ae.driver_event_ids, ae.created_at,
           CASE WHEN ae.event_fingerprint ~ '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'
                THEN (right(ae.event_fingerprint, 10)::date)::timestamp AT TIME ZONE 'UTC' END AS reading_day
      FROM alert_events ae
     WHERE ae.id = ANY (%s)
),
alert_settings AS (
    SELECT c.spike_window_days, c.spike_min_score, c.spike_min_rise_pct, c.high_impact_min_severity
      FROM alerts_config c
     LIMIT 1
)
SELECT wa.id, wa.alert_type,
       driver.occurred_at, driver.category, driver.summary, driver.source_url, driver.source_name,
       reading.risk_score, reading.calculated_at, reading.trend,
       previous_reading.risk_score AS previous_score, previous_reading.calculated_at AS previous_at,
       s.spike_window_days, s.spike_min_score, s.spike_min_rise_pct, s.high_impact_min_severity
  FROM wanted_alerts wa
  LEFT JOIN alert_settings s ON true
  LEFT JOIN LATERAL (
        SELECT {occurred_at}::timestamptz AS occurred_at, e.category::text AS category,
               {summary}::text AS summary, {source_url}::text AS source_url, {source_name}::text AS source_name
          FROM events e
         WHERE wa.alert_type = 'HIGH_IMPACT_EVENT' AND e.id = wa.driver_event_ids[1]
  ) driver ON true
  LEFT JOIN LATERAL (
        -- the reading Phase A fired on: the newest valid one of the fingerprint's day it could see
        (SELECT r.id, r.risk_score::numeric AS risk_score, r.calculated_at::timestamptz AS calculated_at,
                r.trend::text AS trend
           FROM risk_indices r
          WHERE wa.alert_type = 'REGIONAL_RISK_SPIKE'
            AND btrim(r.region) = wa.scope_region AND r.window_days = s.spike_window_days
            AND r.risk_score::numeric BETWEEN 0 AND 100
            AND r.calculated_at::timestamptz >= wa.reading_day
            AND r.calculated_at::timestamptz < wa.reading_day + interval '1 day'
            AND r.calculated_at::timestamptz <= wa.created_at
          ORDER BY r.calculated_at DESC, r.id DESC
          LIMIT 1)
        UNION ALL
        (SELECT a.id, a.risk_score::numeric, a.calculated_at::timestamptz, a.direction::text
           FROM asset_risk a
          WHERE wa.alert_type = 'ASSET_RISK_SPIKE'
            AND btrim(a.region) = wa.scope_region AND lower(btrim(a.asset)) = wa.scope_assets[1]
            AND a.window_days = s.spike_window_days
            AND a.risk_score::numeric BETWEEN 0 AND 100
            AND a.calculated_at::timestamptz >= wa.reading_day
            AND a.calculated_at::timestamptz < wa.reading_day + interval '1 day'
            AND a.calculated_at::timestamptz <= wa.created_at
          ORDER BY a.calculated_at DESC, a.id DESC
          LIMIT 1)
  ) reading ON true
  LEFT JOIN LATERAL (
        -- the baseline: the valid reading just before it
        (SELECT r.risk_score::numeric AS risk_score, r.calculated_at::timestamptz AS calculated_at
           FROM risk_indices r
          WHERE wa.alert_type = 'REGIONAL_RISK_SPIKE'
            AND btrim(r.region) = wa.scope_region AND r.window_days = s.spike_window_days
            AND r.risk_score::numeric BETWEEN 0 AND 100
            AND (r.calculated_at::timestamptz, r.id) < (reading.calculated_at, reading.id)
          ORDER BY r.calculated_at DESC, r.id DESC
          LIMIT 1)
        UNION ALL
        (SELECT a.risk_score::numeric, a.calculated_at::timestamptz
           FROM asset_risk a
          WHERE wa.alert_type = 'ASSET_RISK_SPIKE'
            AND btrim(a.region) = wa.scope_region AND lower(btrim(a.asset)) = wa.scope_assets[1]
            AND a.window_days = s.spike_window_days
            AND a.risk_score::numeric BETWEEN 0 AND 100
            AND (a.calculated_at::timestamptz, a.id) < (reading.calculated_at, reading.id)
          ORDER BY a.calculated_at DESC, a.id DESC
          LIMIT 1)
  ) previous_reading ON true
"""

COLUMNS_SQL = """
SELECT c.column_name, c.data_type
  FROM information_schema.columns c
 WHERE c.table_schema = 'public' AND c.table_name = 'events'
"""

PRIVILEGES_SQL = """
SELECT array_agg(t ORDER BY t) FILTER (WHERE NOT has_table_privilege(format('public.%%I', t), 'SELECT'))
  FROM unnest(%s::text[]) AS t
"""


def chosen_columns(columns: Iterable[tuple[str, str]]) -> dict[str, str]:
    """fact -> the host column that holds it, among the columns (name, data type) events has."""
    types = {name: data_type for name, data_type in columns}
    chosen: dict[str, str] = {}
    for fact, (candidates, accepted) in OPTIONAL_EVENT_COLUMNS.items():
        for column in candidates:
            if types.get(column) in accepted:
                chosen[fact] = column
                break
    return chosen


def facts_statement(columns: dict[str, str]) -> sql.Composed:
    """FACTS_SQL with each optional fact read from its column, NULL where events has none
    (occurred_at falls back to inserted_at, which the contract guarantees)."""
    def column(fact: str, fallback: sql.Composable) -> sql.Composable:
        return sql.SQL("e.{}").format(sql.Identifier(columns[fact])) if fact in columns else fallback

    return sql.SQL(FACTS_SQL).format(
        occurred_at=column("occurred_at", sql.SQL("e.inserted_at")),
        summary=column("summary", sql.NULL),
        source_url=column("source_url", sql.NULL),
        source_name=column("source_name", sql.NULL),
    )


def web_link(value: object) -> str | None:
    """value when it is an http(s) URL a recipient may follow, else None (no javascript:, no spaces,
    none of the characters a URL must percent-encode)."""
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > URL_MAX_CHARS or any(c.isspace() or not c.isprintable() or c in '"<>`\\^{|}'
                                                    for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def clean_text(value: object, limit: int) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _number(value: object) -> float | None:
    return float(value) if value is not None else None  # type: ignore[arg-type]


def facts_of(row: dict) -> EventFacts:
    """One row of FACTS_SQL as EventFacts."""
    source_url = web_link(row["source_url"])
    source_name = clean_text(row["source_name"], 100)
    if source_url is None and web_link(source_name) is not None:  # a 'source' column holding the link
        source_url, source_name = web_link(source_name), None
    spike = row["risk_score"] is not None
    when: datetime | None = row["calculated_at"] if spike else row["occurred_at"]
    return EventFacts(
        occurred_at=when,
        score=_number(row["risk_score"]),
        previous_score=_number(row["previous_score"]),
        previous_at=row["previous_at"],
        threshold=_number(row["spike_min_score"] if spike else row["high_impact_min_severity"]),
        rise_pct=_number(row["spike_min_rise_pct"]) if row["alert_type"] == "REGIONAL_RISK_SPIKE" else None,
        window_days=int(row["spike_window_days"]) if spike and row["spike_window_days"] is not None else None,
        trend=clean_text(row["trend"], 40),
        category=clean_text(row["category"], 80),
        summary=clean_text(row["summary"], SUMMARY_MAX_CHARS),
        source_url=source_url,
        source_name=source_name,
    )


class FactsLoader:
    """Facts per alert event for one run's database: looked up once per event, set-based per batch."""

    def __init__(self) -> None:
        self._facts: OrderedDict[int, EventFacts] = OrderedDict()
        self._statement: sql.Composed | None = None
        self.disabled_because: str | None = None

    def get(self, event_id: int) -> EventFacts:
        return self._facts.get(event_id, NO_FACTS)

    def load(self, db: Rows, event_ids: set[int]) -> None:
        """Read the facts of the events not known yet, in one statement."""
        missing = sorted(i for i in event_ids if i not in self._facts)
        if not missing or self.disabled_because:
            return
        try:
            if self._statement is None:
                self._statement = self._prepare(db)
                if self._statement is None:
                    return
            rows = db.rows(self._statement, [missing])
        except psycopg.OperationalError as error:  # facts never hold up a claimed batch: send it without them
            log.warning("messages of this batch carry only what the claim returns: reading the events' facts "
                        "failed: %s", one_line(error))
            return
        except psycopg.Error as error:
            self._disable(f"reading the events' facts failed: {one_line(error)}")
            return
        for row in rows:
            self._facts[int(row["id"])] = facts_of(row)
        for event_id in missing:
            self._facts.setdefault(event_id, NO_FACTS)
        while len(self._facts) > CACHE_SIZE:
            self._facts.popitem(last=False)

    def _prepare(self, db: Rows) -> sql.Composed | None:
        denied = db.rows(PRIVILEGES_SQL, [list(TABLES_READ)])[0]["array_agg"]
        if denied:
            self._disable(f"this role may not read {', '.join(denied)} (GRANT SELECT ON {', '.join(denied)} "
                          "TO the runner's login)")
            return None
        columns = chosen_columns((r["column_name"], r["data_type"]) for r in db.rows(COLUMNS_SQL, []))
        log.debug("optional event columns used in messages: %s", columns or "none")
        return facts_statement(columns)

    def _disable(self, reason: str) -> None:
        self.disabled_because = reason
        log.warning("messages carry only what the claim returns (no event time, source or baseline): %s", reason)


_loaders: "WeakKeyDictionary[object, FactsLoader]" = WeakKeyDictionary()


def loader_for(db: object) -> FactsLoader:
    """The loader of one database handle: facts are never shared between databases."""
    loader = _loaders.get(db)
    if loader is None:
        loader = _loaders[db] = FactsLoader()
    return loader


def attach_to_deliveries(db: Rows, rows: list[dict]) -> None:
    """Give each claimed delivery row its event's facts (row["facts"])."""
    attach(db, rows, lambda row: [row])


def attach_to_digests(db: Rows, rows: list[dict]) -> None:
    """Give each event listed in a claimed digest its facts (item["facts"])."""
    attach(db, rows, lambda row: list(row.get("items") or []))


def attach(db: Rows, rows: list[dict], holders: Callable[[dict], list[dict]]) -> None:
    if not rows:
        return
    loader = loader_for(db)
    every = [holder for row in rows for holder in holders(row)]
    loader.load(db, {int(holder["alert_event_id"]) for holder in every})
    for holder in every:
        holder["facts"] = loader.get(int(holder["alert_event_id"]))
