"""Sample messages of every kind on every channel, as docs/messages.md shows them.

    python -m devtools.samples > docs/messages.md      (make samples)

The samples go through the same renderer as Phase C (alerts.render, alerts.templates) with
fixed facts, so the page is what users receive; tests/test_message_samples.py fails when the
committed page differs from what this prints.
"""

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from alerts.message import DigestItem, EventFacts, OutgoingMessage
from alerts.message_settings import MessageSettings
from alerts.render import with_channel_texts
from alerts.templates import gsm7_septets, sms_segment_fits

SETTINGS = MessageSettings(preferences_url="https://app.example.com/settings/alerts")
READING = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
HAPPENED = datetime(2026, 11, 30, 6, 12, tzinfo=UTC)
DESTINATIONS = {"email": "trader@example.com", "telegram": "100200301", "sms": "+15550100301"}
HTML_EXCERPT_LINES = 14

HIGH_IMPACT = dict(
    alert_event_id=11, alert_type="HIGH_IMPACT_EVENT", severity=4, region="Middle East", assets=(),
    headline="Tanker seized near the Strait of Hormuz", event_body="Severity 4/5 event in Middle East (shipping).",
    detected_at=HAPPENED + timedelta(minutes=3),
    facts=EventFacts(occurred_at=HAPPENED, threshold=4, category="shipping",
                     summary="Naval forces boarded a crude tanker in the strait; war-risk premiums for Gulf "
                             "loadings are expected to rise.",
                     source_url="https://news.example.com/2026/11/30/hormuz-tanker", source_name="Example News"),
)
REGIONAL_SPIKE = dict(
    alert_event_id=12, alert_type="REGIONAL_RISK_SPIKE", severity=4, region="Middle East", assets=(),
    headline="Regional risk spike in Middle East",
    event_body="The 7-day risk index for Middle East is 82.0 (previous 58.0).",
    detected_at=READING + timedelta(minutes=1),
    facts=EventFacts(occurred_at=READING, score=82.0, previous_score=58.0, previous_at=READING - timedelta(days=1),
                     threshold=70, rise_pct=20, window_days=7, trend="rising"),
)
ASSET_SPIKE = dict(
    alert_event_id=13, alert_type="ASSET_RISK_SPIKE", severity=4, region="Europe", assets=("gas",),
    headline="Gas risk spike in Europe", event_body="The 7-day gas risk score for Europe is 88.0.",
    detected_at=READING + timedelta(minutes=1),
    facts=EventFacts(occurred_at=READING, score=88.0, previous_score=61.0, previous_at=READING - timedelta(days=1),
                     threshold=70, window_days=7, trend="up"),
)
DIGEST_ITEMS = (
    DigestItem(21, "HIGH_IMPACT_EVENT", 5, "Europe", "Explosion at Baltic gas pipeline compressor station",
               EventFacts(occurred_at=datetime(2026, 11, 29, 21, 40, tzinfo=UTC), threshold=4,
                          source_url="https://news.example.com/2026/11/29/baltic-compressor")),
    DigestItem(22, "ASSET_RISK_SPIKE", 4, "Europe", "Gas risk spike in Europe",
               EventFacts(occurred_at=datetime(2026, 11, 29, 5, 0, tzinfo=UTC), score=88.0, threshold=70)),
    DigestItem(23, "HIGH_IMPACT_EVENT", 4, "Asia", "Typhoon closes Shanghai and Ningbo container terminals",
               EventFacts(occurred_at=datetime(2026, 11, 29, 9, 5, tzinfo=UTC), threshold=4)),
)


def sample(channel: str, fields: dict, delivery_id: int) -> OutgoingMessage:
    message = OutgoingMessage(delivery_id=delivery_id, user_id=7, channel=channel,
                              destination=DESTINATIONS[channel], subject=None, body="", attempt=1, **fields)
    return with_channel_texts(message, SETTINGS)


def digest_sample(channel: str) -> OutgoingMessage:
    items = DIGEST_ITEMS
    message = OutgoingMessage(
        delivery_id=7, user_id=7, channel=channel, destination=DESTINATIONS[channel], subject=None, body="",
        alert_event_id=0, attempt=1, alert_type="DIGEST", severity=5, region="Asia, Europe", assets=(),
        headline=f"Your daily alert digest for 2026-11-29: {len(items)} alerts", event_body="", kind="digest",
        member_ids=(101, 102, 103), items=items, period="daily", window_start=datetime(2026, 11, 29, tzinfo=UTC))
    return with_channel_texts(message, SETTINGS)


KINDS = (
    ("High-impact event", lambda channel: sample(channel, HIGH_IMPACT, 42)),
    ("Regional risk spike", lambda channel: sample(channel, REGIONAL_SPIKE, 43)),
    ("Asset risk spike", lambda channel: sample(channel, ASSET_SPIKE, 44)),
    ("Digest", digest_sample),
)


def fenced(text: str, language: str = "text") -> str:
    return f"```{language}\n{text.rstrip()}\n```"


def channel_section(message: OutgoingMessage) -> Iterator[str]:
    if message.channel == "email":
        yield f"**Email** — subject: `{message.subject}`\n"
        yield "Plain-text part:\n"
        yield fenced(message.body) + "\n"
        html = (message.html or "").splitlines()
        yield f"HTML part (first {HTML_EXCERPT_LINES} of {len(html)} lines):\n"
        yield fenced("\n".join(html[:HTML_EXCERPT_LINES]), "html") + "\n"
    elif message.channel == "telegram":
        yield "**Telegram** — `sendMessage` text, `parse_mode=HTML`:\n"
        yield fenced(message.body, "html") + "\n"
    else:
        segments = "one segment" if sms_segment_fits(message.body) else "more than one segment"
        encoding = "GSM-7" if gsm7_septets(message.body) is not None else "UCS-2"
        yield f"**SMS** — {len(message.body)} characters, {encoding}, {segments}:\n"
        yield fenced(message.body) + "\n"


def page() -> str:
    lines = [
        "# What users receive",
        "",
        "Generated by `python -m devtools.samples > docs/messages.md` (`make samples`) from the same renderer",
        "Phase C and the file outbox use (`alerts/templates.py`); `tests/test_message_samples.py` fails when",
        "this page is stale. The facts (times, scores, the previous reading, the source) are fixed samples;",
        "in a run they come from the alert event's source rows (`alerts/event_facts.py`). The preferences",
        f"link is `ALERTS_PREFERENCES_URL` (here {SETTINGS.preferences_url}).",
        "",
    ]
    for title, build in KINDS:
        lines += [f"## {title}", ""]
        for channel in ("email", "telegram", "sms"):
            lines += list(channel_section(build(channel)))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.samples",
                                     description="Print sample messages of every kind and channel as Markdown.")
    parser.parse_args(argv)
    sys.stdout.write(page())
    return 0


if __name__ == "__main__":
    sys.exit(main())
