"""What a message is made of: the delivery (who, where to, which attempt), the alert event it
is about, the facts that make it actionable, and the texts a provider receives for its channel."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EventFacts:
    """What the alert event's source rows say beyond alert_events, read at send time
    (alerts.event_facts). Every field is optional: a host table without the column, a row
    deleted since, or a role that may not read the table leaves it None.

    occurred_at     high-impact: when the event happened (a host column such as occurred_at,
                    else events.inserted_at); spikes: the reading's calculated_at
    score           spikes: the reading's risk score (0-100)
    previous_score  spikes: the reading before it (the baseline), and previous_at its time
    threshold       spikes: alerts_config.spike_min_score; high-impact: high_impact_min_severity
    rise_pct        regional spikes: alerts_config.spike_min_rise_pct (the rise that fires)
    window_days     spikes: the index's window
    trend           spikes: risk_indices.trend / asset_risk.direction
    category        high-impact: events.category
    summary         high-impact: an optional host column (summary, description)
    source_url      high-impact: an optional host column (source_url, url, link), http(s) only
    source_name     high-impact: an optional host column (source_name, source)
    """

    occurred_at: datetime | None = None
    score: float | None = None
    previous_score: float | None = None
    previous_at: datetime | None = None
    threshold: float | None = None
    rise_pct: float | None = None
    window_days: int | None = None
    trend: str | None = None
    category: str | None = None
    summary: str | None = None
    source_url: str | None = None
    source_name: str | None = None


NO_FACTS = EventFacts()


@dataclass(frozen=True)
class DigestItem:
    """One event listed in a digest."""

    alert_event_id: int
    alert_type: str
    severity: int
    region: str
    headline: str
    facts: EventFacts = NO_FACTS


@dataclass(frozen=True)
class OutgoingMessage:
    """One delivery (or digest) to send.

    subject, body, html: exactly what the channel's provider receives (alerts.templates):
    email: subject, plain-text part, HTML part; telegram: body is the HTML text sent with
    parse_mode=HTML, no subject; sms: body is the text, no subject. The event's fields below
    them are what the texts are made from."""

    delivery_id: int
    user_id: int
    channel: str
    destination: str
    subject: str | None
    body: str
    alert_event_id: int
    attempt: int
    alert_type: str
    severity: int
    region: str
    assets: tuple[str, ...]
    headline: str
    event_body: str
    kind: str = "delivery"  # or "digest": delivery_id is then the digest's id
    member_ids: tuple[int, ...] = ()  # a digest's deliveries
    html: str | None = None
    detected_at: datetime | None = None  # when Phase A raised the alert (alert_events.created_at)
    facts: EventFacts = NO_FACTS
    items: tuple[DigestItem, ...] = ()  # a digest's events, most severe first
    period: str = ""  # a digest's: daily or hourly
    window_start: datetime | None = None  # a digest's window, in UTC
