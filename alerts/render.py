"""Turns a claimed delivery into the subject and body a sender transmits."""

from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    user_id: int
    channel: str
    destination: str
    subject: str
    body: str
    alert_event_id: int
    attempt: int


def render(row: dict[str, object]) -> OutgoingMessage:
    """Build the message for one row returned by claim_deliveries()."""
    headline = str(row["headline"])
    region = str(row["scope_region"])
    assets = ", ".join(row["scope_assets"] or [])  # type: ignore[arg-type]
    scope = f"{region} / {assets}" if assets else region
    subject = f"[{row['alert_type']} {row['severity']}/5] {headline}"
    body = f"{headline}\n\n{row['body']}\n\nScope: {scope}\nSeverity: {row['severity']}/5\n"
    return OutgoingMessage(
        delivery_id=int(row["delivery_id"]),  # type: ignore[arg-type]
        user_id=int(row["user_id"]),  # type: ignore[arg-type]
        channel=str(row["channel"]),
        destination=str(row["destination"]),
        subject=subject,
        body=body,
        alert_event_id=int(row["alert_event_id"]),  # type: ignore[arg-type]
        attempt=int(row["attempts"]),  # type: ignore[arg-type]
    )
