"""Turns a claimed delivery or digest into the message a sender transmits.

The message carries its channel's texts exactly as its provider receives them
(alerts.templates), so the file outbox shows what users get; the providers send the same
functions' output. A claimed row carries its event's facts (alerts.event_facts) under "facts".
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import NamedTuple

from alerts import templates
from alerts.message import NO_FACTS, DigestItem, EventFacts, OutgoingMessage
from alerts.message_settings import MessageSettings, current_settings

__all__ = ["OutgoingMessage", "clear_cache", "render", "render_digest", "with_channel_texts"]


def with_channel_texts(message: OutgoingMessage, settings: MessageSettings | None = None) -> OutgoingMessage:
    """The message with subject, body and html as its channel's provider receives them."""
    subject, body, html = templates.channel_texts(message, settings)
    return replace(message, subject=subject, body=body, html=html)


class _Draft(NamedTuple):
    """The last event rendered on a channel: what its rows said, a message carrying everything but
    the recipient's fields, and its texts (alerts.templates' cache)."""

    signature: tuple
    message: OutgoingMessage
    texts: tuple[str | None, str, str | None]  # email: REFERENCE_MARK where the reference goes


_drafts: dict[str, _Draft] = {}  # per channel; a batch's rows come event by event


def clear_cache() -> None:
    """Forget every event's draft and texts: the next render builds them anew."""
    _drafts.clear()
    templates.clear_cache()


def render(row: dict[str, object]) -> OutgoingMessage:
    """Build the message for one row returned by claim_deliveries(). Called once per delivery: the
    event's draft (its fields and texts' cache key) is built when a row's event differs from the
    last one rendered on its channel, so a row costs a comparison, its reference filled in and a copy."""
    facts = row.get("facts")
    facts = facts if isinstance(facts, EventFacts) else NO_FACTS
    detected_at = row.get("event_created_at")
    detected_at = detected_at if isinstance(detected_at, datetime) else None
    channel = str(row["channel"])
    settings = current_settings()
    signature = (row["alert_event_id"], row["alert_type"], row["severity"], row["scope_region"], row["scope_assets"],
                 row["headline"], row["body"], detected_at, facts, settings)
    draft = _drafts.get(channel)
    if draft is None or draft.signature != signature:
        draft = _drafts[channel] = _draft(row, channel, signature, detected_at, facts)
    delivery_id = int(row["delivery_id"])  # type: ignore[call-overload]
    subject, body, html = draft.texts
    user_id = int(row["user_id"])  # type: ignore[call-overload]
    if channel == "email":  # as templates.texts_for(): the recipient's reference and unsubscribe link
        reference, link = f"delivery {delivery_id}", templates.link_for(channel, user_id, settings)
        body = templates.personal(body, reference, link, html=False)
        html = templates.personal(html, reference, link, html=True) if html is not None else None
    message = object.__new__(OutgoingMessage)  # replace() without __init__'s setattr per field: a dict copy
    message.__dict__.update(
        draft.message.__dict__, delivery_id=delivery_id, user_id=user_id,
        destination=str(row["destination"]), attempt=int(row["attempts"]),  # type: ignore[call-overload]
        subject=subject, body=body, html=html)
    return message


def _draft(row: dict[str, object], channel: str, signature: tuple, detected_at: datetime | None,
           facts: EventFacts) -> _Draft:
    alert_type, severity = str(row["alert_type"]), int(row["severity"])  # type: ignore[call-overload]
    region, headline, event_body = str(row["scope_region"]), str(row["headline"]), str(row["body"])
    assets = tuple(str(a) for a in (row["scope_assets"] or []))  # type: ignore[attr-defined]
    message = OutgoingMessage(
        delivery_id=0, user_id=0, channel=channel, destination="", subject=None, body="",
        alert_event_id=int(row["alert_event_id"]), attempt=0,  # type: ignore[call-overload]
        alert_type=alert_type, severity=severity, region=region, assets=assets, headline=headline,
        event_body=event_body, detected_at=detected_at, facts=facts)
    key = templates.content_key_of("delivery", alert_type, severity, region, assets, headline, event_body,
                                   detected_at, facts, (), "", None)
    return _Draft(signature, message, templates.marked_texts_for(channel, signature[-1], key, lambda: message))


def digest_item(item: dict) -> DigestItem:
    facts = item.get("facts")
    return DigestItem(alert_event_id=int(item["alert_event_id"]), alert_type=str(item["alert_type"]),
                      severity=int(item["severity"]), region=str(item["region"]), headline=str(item["headline"]),
                      facts=facts if isinstance(facts, EventFacts) else NO_FACTS)


def render_digest(row: dict[str, object]) -> OutgoingMessage:
    """One message listing a digest's events, most severe first, for a row of claim_digests()."""
    raw_items: list[dict] = list(row["items"])  # type: ignore[call-overload]
    items = tuple(digest_item(item) for item in raw_items)
    period = "hourly" if row["period"] == "hourly" else "daily"
    # window_start arrives in the session's TimeZone (the database's setting): name it in UTC.
    window_start = row["window_start"].astimezone(UTC)  # type: ignore[attr-defined]
    window = window_start.strftime("%Y-%m-%d %H:%M UTC" if period == "hourly" else "%Y-%m-%d")
    headline = f"Your {period} alert digest for {window}: {len(items)} alert{'s' if len(items) != 1 else ''}"
    message = OutgoingMessage(
        delivery_id=int(row["digest_id"]),  # type: ignore[call-overload]
        user_id=int(row["user_id"]),  # type: ignore[call-overload]
        channel=str(row["channel"]),
        destination=str(row["destination"]),
        subject=None,
        body="",
        alert_event_id=0,
        attempt=int(row["attempts"]),  # type: ignore[call-overload]
        alert_type="DIGEST",
        severity=max((item.severity for item in items), default=1),
        region=", ".join(sorted({item.region for item in items})),
        assets=(),
        headline=headline,
        event_body="\n".join(f"- [{item.severity}/5] {item.headline} ({item.region})" for item in items),
        kind="digest",
        member_ids=tuple(int(item["delivery_id"]) for item in raw_items),
        items=items,
        period=period,
        window_start=window_start,
    )
    return with_channel_texts(message)
