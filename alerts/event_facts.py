"""The facts that make a message actionable, read from an alert event's source rows at send time.

alert_events holds what Phase A wrote (type, scope, severity, headline, body). A recipient also
needs when it happened, why it fired and where to read more: the driver event's time, category
and (when the host's events table has such columns) summary and source link; a spike's reading,
its time and the reading before it (the baseline); the thresholds of alerts_config. The stored
function alert_message_facts(ids, claim_tokens) reads them as the engine's owner (so a runner login
that may only execute the engine's functions gets them too), only for the events of rows held under
the given claim tokens, and finds the optional host columns itself.
One call per claimed batch reads them for the events not seen yet in this run, and they are kept
per event, so the hot path costs one set look-up per batch. Here they are cleaned for messages.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import psycopg

from alerts.db import one_line
from alerts.message import NO_FACTS, EventFacts

log = logging.getLogger("alerts.event_facts")

CACHE_SIZE = 4096  # events whose facts a run keeps
SUMMARY_MAX_CHARS = 600
URL_MAX_CHARS = 500


class Rows(Protocol):
    """What the loader needs of Phase C's database: alerts.delivery.Database."""

    def rows(self, sql: object, params: list) -> list[dict]: ...


FACTS_SQL = "SELECT * FROM alert_message_facts(%s, %s)"


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
    """One row of alert_message_facts() as EventFacts."""
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
        self.disabled_because: str | None = None

    def get(self, event_id: int) -> EventFacts:
        return self._facts.get(event_id, NO_FACTS)

    def load(self, db: Rows, event_ids: set[int], claim_tokens: set[int]) -> None:
        """Read the facts of the events not known yet, in one call. The database gives them only for
        events of rows held under one of claim_tokens (the claims' fencing tokens)."""
        missing = sorted(i for i in event_ids if i not in self._facts)
        if not missing or self.disabled_because:
            return
        try:
            rows = db.rows(FACTS_SQL, [missing, sorted(claim_tokens)])
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
    """Give each claimed delivery row its event's facts (row["facts"]): one look-up per run of rows
    of the same event (a claim returns them event by event)."""
    if not rows:
        return
    loader = loader_for(db)
    loader.load(db, {int(row["alert_event_id"]) for row in rows}, {int(row["claim_token"]) for row in rows})
    event_id, facts = None, NO_FACTS
    for row in rows:
        if row["alert_event_id"] != event_id:
            event_id = row["alert_event_id"]
            facts = loader.get(int(event_id))
        row["facts"] = facts


def attach_to_digests(db: Rows, rows: list[dict]) -> None:
    """Give each event listed in a claimed digest its facts (item["facts"])."""
    attach(db, rows, lambda row: list(row.get("items") or []))


def attach(db: Rows, rows: list[dict], holders: Callable[[dict], list[dict]]) -> None:
    if not rows:
        return
    loader = loader_for(db)
    every = [holder for row in rows for holder in holders(row)]
    loader.load(db, {int(holder["alert_event_id"]) for holder in every}, {int(row["claim_token"]) for row in rows})
    for holder in every:
        holder["facts"] = loader.get(int(holder["alert_event_id"]))
