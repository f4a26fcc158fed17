"""Turns a claimed delivery or digest into the message a sender transmits.

The message carries its channel's texts exactly as its provider receives them
(alerts.templates), so the file outbox shows what users get; the providers send the same
functions' output. A claimed row carries its event's facts (alerts.event_facts) under "facts".
"""

from dataclasses import replace
from datetime import UTC, datetime

from alerts import templates
from alerts.message import NO_FACTS, DigestItem, EventFacts, OutgoingMessage
from alerts.message_settings import MessageSettings, current_settings

__all__ = ["OutgoingMessage", "render", "render_digest", "with_channel_texts"]


def with_channel_texts(message: OutgoingMessage, settings: MessageSettings | None = None) -> OutgoingMessage:
    """The message with subject, body and html as its channel's provider receives them."""
    subject, body, html = templates.channel_texts(message, settings)
    return replace(message, subject=subject, body=body, html=html)


def render(row: dict[str, object]) -> OutgoingMessage:
    """Build the message for one row returned by claim_deliveries(). Called once per delivery: the
    event's texts come from the renderer's cache, so only a draft is built, once per event."""
    facts = row.get("facts")
    facts = facts if isinstance(facts, EventFacts) else NO_FACTS
    detected_at = row.get("event_created_at")
    detected_at = detected_at if isinstance(detected_at, datetime) else None
    delivery_id = int(row["delivery_id"])  # type: ignore[call-overload]
    channel = str(row["channel"])
    alert_type, severity = str(row["alert_type"]), int(row["severity"])  # type: ignore[call-overload]
    region, headline, event_body = str(row["scope_region"]), str(row["headline"]), str(row["body"])
    assets = tuple(str(a) for a in (row["scope_assets"] or []))  # type: ignore[attr-defined]

    def message(subject: str | None = None, body: str = "", html: str | None = None) -> OutgoingMessage:
        return OutgoingMessage(
            delivery_id=delivery_id, user_id=int(row["user_id"]),  # type: ignore[call-overload]
            channel=channel, destination=str(row["destination"]), subject=subject, body=body,
            alert_event_id=int(row["alert_event_id"]), attempt=int(row["attempts"]),  # type: ignore[call-overload]
            alert_type=alert_type, severity=severity, region=region, assets=assets, headline=headline,
            event_body=event_body, detected_at=detected_at, facts=facts, html=html)

    key = templates.content_key_of("delivery", alert_type, severity, region, assets, headline, event_body,
                                   detected_at, facts, (), "", None)
    return message(*templates.texts_for(channel, f"delivery {delivery_id}", current_settings(), key, message,
                                        int(row["user_id"])))  # type: ignore[call-overload]


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
