"""Turns a claimed delivery or digest into the message a sender transmits."""

from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache


@dataclass(frozen=True)
class OutgoingMessage:
    """One delivery to send: where, the plain-text rendering, and the event's fields
    for senders that render richer formats (HTML email, Telegram)."""

    delivery_id: int
    user_id: int
    channel: str
    destination: str
    subject: str
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


def render(row: dict[str, object]) -> OutgoingMessage:
    """Build the message for one row returned by claim_deliveries()."""
    alert_type = str(row["alert_type"])
    severity = int(row["severity"])  # type: ignore[call-overload]
    headline = str(row["headline"])
    event_body = str(row["body"])
    region = str(row["scope_region"])
    assets = tuple(str(a) for a in (row["scope_assets"] or []))  # type: ignore[attr-defined]
    subject, body = event_text(alert_type, severity, headline, event_body, region, assets)
    return OutgoingMessage(
        delivery_id=int(row["delivery_id"]),  # type: ignore[call-overload]
        user_id=int(row["user_id"]),  # type: ignore[call-overload]
        channel=str(row["channel"]),
        destination=str(row["destination"]),
        subject=subject,
        body=body,
        alert_event_id=int(row["alert_event_id"]),  # type: ignore[call-overload]
        attempt=int(row["attempts"]),  # type: ignore[call-overload]
        alert_type=alert_type,
        severity=severity,
        region=region,
        assets=assets,
        headline=headline,
        event_body=event_body,
    )


@lru_cache(maxsize=256)
def event_text(alert_type: str, severity: int, headline: str, event_body: str, region: str,
               assets: tuple[str, ...]) -> tuple[str, str]:
    """(subject, body) of an event's message. Every delivery of an event shares them, so they are
    cached; the key is every input, so a cached text can only be the text these inputs render."""
    scope = f"{region} / {', '.join(assets)}" if assets else region
    subject = f"[{alert_type} {severity}/5] {headline}"
    body = f"{headline}\n\n{event_body}\n\nScope: {scope}\nSeverity: {severity}/5\n"
    return subject, body


def render_digest(row: dict[str, object]) -> OutgoingMessage:
    """One message listing a digest's events, most severe first, for a row of claim_digests()."""
    items: list[dict] = list(row["items"])  # type: ignore[call-overload]
    period = "hourly" if row["period"] == "hourly" else "daily"
    # window_start arrives in the session's TimeZone (the database's setting): name it in UTC.
    window_start = row["window_start"].astimezone(UTC)  # type: ignore[attr-defined]
    window = window_start.strftime("%Y-%m-%d %H:%M UTC" if period == "hourly" else "%Y-%m-%d")
    headline = f"Your {period} alert digest for {window}: {len(items)} alert{'s' if len(items) != 1 else ''}"
    lines = [f"- [{item['severity']}/5] {item['headline']} ({item['region']})" for item in items]
    event_body = "\n".join(lines)
    regions = sorted({str(item["region"]) for item in items})
    return OutgoingMessage(
        delivery_id=int(row["digest_id"]),  # type: ignore[call-overload]
        user_id=int(row["user_id"]),  # type: ignore[call-overload]
        channel=str(row["channel"]),
        destination=str(row["destination"]),
        subject=headline,
        body=f"{headline}\n\n{event_body}\n",
        alert_event_id=0,
        attempt=int(row["attempts"]),  # type: ignore[call-overload]
        alert_type="DIGEST",
        severity=max((int(item["severity"]) for item in items), default=1),
        region=", ".join(regions),
        assets=(),
        headline=headline,
        event_body=event_body,
        kind="digest",
        member_ids=tuple(int(item["delivery_id"]) for item in items),
    )
