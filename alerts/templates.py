"""What each channel's message says: email subject, text and HTML; Telegram HTML; SMS text.

Senders call these and never build message text themselves. Everything that comes from
an alert event (headline, body, region, assets) is source text: it is escaped with
html.escape wherever the output is HTML, and stripped of line breaks where it goes into
a header. No template engine: string.Template, with values escaped before substitution.
"""

import re
from html import escape
from string import Template

from alerts.render import OutgoingMessage

ALERT_TYPE_LABELS = {
    "HIGH_IMPACT_EVENT": "High-impact event",
    "REGIONAL_RISK_SPIKE": "Regional risk spike",
    "ASSET_RISK_SPIKE": "Asset risk spike",
    "DIGEST": "Alert digest",
}

SUBJECT_MAX_CHARS = 200
TELEGRAM_HEADLINE_MAX_CHARS = 300
TELEGRAM_BODY_MAX_CHARS = 3500  # Telegram's limit is 4096 characters after entity parsing
SMS_TEXT_MAX_CHARS = 300  # two concatenated GSM-7 segments, roughly
ELLIPSIS = "..."

_WHITESPACE = re.compile(r"\s+")

EMAIL_TEXT = Template("""\
$headline

$body

Alert: $label
Severity: $severity/5
Scope: $scope

You receive this message because of your Alerts v2 preferences.
Reference: $reference
""")

EMAIL_HTML = Template("""\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>$subject</title></head>
<body style="font-family: Arial, Helvetica, sans-serif; color: #222; line-height: 1.4;">
<p style="color: #666; font-size: 13px; margin: 0;">$label &middot; severity $severity/5</p>
<h1 style="font-size: 20px; margin: 8px 0 16px;">$headline</h1>
$body_html
<table style="border-collapse: collapse; margin-top: 16px; font-size: 14px;">
<tr><td style="padding: 2px 12px 2px 0; color: #666;">Alert</td><td>$label</td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #666;">Severity</td><td>$severity/5</td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #666;">Scope</td><td>$scope</td></tr>
</table>
<p style="color: #999; font-size: 12px; margin-top: 24px;">You receive this message because of your
Alerts v2 preferences. Reference: $reference</p>
</body>
</html>
""")

# Telegram's HTML knows only the named entities &lt; &gt; &amp; &quot;: no &middot; here.
TELEGRAM_HTML = Template("""\
<b>$label</b> · severity $severity/5
<b>$headline</b>

$body

Scope: $scope""")

SMS_TEXT = Template("[$label $severity/5] $headline ($scope)")


def one_line(text: str) -> str:
    """Collapse every run of whitespace, line breaks included, to one space."""
    return _WHITESPACE.sub(" ", text).strip()


def shorten(text: str, limit: int) -> str:
    """text cut to at most limit characters, ending in ... when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def alert_label(alert_type: str) -> str:
    return ALERT_TYPE_LABELS.get(alert_type, alert_type.replace("_", " ").capitalize())


def scope_text(message: OutgoingMessage) -> str:
    return f"{message.region} / {', '.join(message.assets)}" if message.assets else message.region


def email_subject(message: OutgoingMessage) -> str:
    """One line, safe for a header: [label severity/5] headline."""
    subject = f"[{alert_label(message.alert_type)} {message.severity}/5] {one_line(message.headline)}"
    return shorten(subject, SUBJECT_MAX_CHARS)


def reference(message: OutgoingMessage) -> str:
    """What the footer names the message by: "delivery 42" or "digest 7"."""
    return f"{message.kind} {int(message.delivery_id)}"


def email_text(message: OutgoingMessage, reference_text: str | None = None) -> str:
    """The plain-text email; reference_text replaces the footer's reference (a placeholder, so
    that the rest of the message can be built once for every recipient of an event)."""
    return EMAIL_TEXT.substitute(
        headline=message.headline.strip(),
        body=message.event_body.strip(),
        label=alert_label(message.alert_type),
        severity=message.severity,
        scope=scope_text(message),
        reference=reference_text or reference(message),
    )


def html_paragraphs(text: str) -> str:
    """Plain text as escaped HTML paragraphs: blank lines split paragraphs, newlines become <br>."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "\n".join(
        '<p style="margin: 0 0 12px;">' + "<br>\n".join(escape(line) for line in p.splitlines()) + "</p>"
        for p in paragraphs
    )


def email_html(message: OutgoingMessage, reference_text: str | None = None) -> str:
    return EMAIL_HTML.substitute(
        subject=escape(email_subject(message)),
        headline=escape(one_line(message.headline)),
        body_html=html_paragraphs(message.event_body),
        label=escape(alert_label(message.alert_type)),
        severity=int(message.severity),
        scope=escape(scope_text(message)),
        reference=escape(reference_text or reference(message)),
    )


def email_message_id(delivery_id: int, domain: str, kind: str = "delivery") -> str:
    """Stable per delivery (or digest), so a repeated send of the same row is recognisable downstream."""
    return f"<alerts-v2-{'digest' if kind == 'digest' else 'delivery'}-{int(delivery_id)}@{domain}>"


def telegram_html(message: OutgoingMessage) -> str:
    """Text for sendMessage with parse_mode=HTML; every source value escaped, within Telegram's limit."""
    return TELEGRAM_HTML.substitute(
        label=escape(alert_label(message.alert_type)),
        severity=int(message.severity),
        headline=escape(shorten(one_line(message.headline), TELEGRAM_HEADLINE_MAX_CHARS)),
        body=escape(shorten(message.event_body.strip(), TELEGRAM_BODY_MAX_CHARS)),
        scope=escape(scope_text(message)),
    )


def sms_text(message: OutgoingMessage) -> str:
    """Short plain text: [label severity/5] headline (scope), the headline cut to fit."""
    fixed = SMS_TEXT.substitute(label=alert_label(message.alert_type), severity=int(message.severity),
                                headline="", scope=one_line(scope_text(message)))
    headline = shorten(one_line(message.headline), max(SMS_TEXT_MAX_CHARS - len(fixed), 20))
    return shorten(SMS_TEXT.substitute(label=alert_label(message.alert_type), severity=int(message.severity),
                                       headline=headline, scope=one_line(scope_text(message))),
                   SMS_TEXT_MAX_CHARS)
