"""What each channel's message says: email subject, text and HTML; Telegram HTML; SMS text.

The one renderer: alerts.render builds every message's texts here, the file outbox writes
them, and the providers send the same functions' output. Each message says what happened,
where, when (UTC; a spike's reading time), how severe, why it fired (the threshold or the
rise, with the reading before it) and links the source when the host row has one
(alerts.event_facts); without facts it says what alert_events holds.

Everything that comes from an alert event or a host row is source text: it is escaped with
html.escape wherever the output is HTML, stripped of line breaks where it goes into a header
or an SMS, and links are http(s) only. No template engine: values are escaped before they are
joined. The texts of an event are the same for all its recipients but for the footer's
reference, so they are built once per event and channel (a bounded cache keyed by every input)
with a mark where the reference goes.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape

import gsm0338  # noqa: F401 - registers the gsm03.38 codec

from alerts.message import NO_FACTS, DigestItem, EventFacts, OutgoingMessage
from alerts.message_settings import MessageSettings, current_settings
from alerts.unsubscribe import ONE_CLICK

ALERT_TYPE_LABELS = {
    "HIGH_IMPACT_EVENT": "High-impact event",
    "REGIONAL_RISK_SPIKE": "Regional risk spike",
    "ASSET_RISK_SPIKE": "Asset risk spike",
    "DIGEST": "Alert digest",
}
WHAT_PREFS_COVER = {
    "HIGH_IMPACT_EVENT": "high-impact events",
    "REGIONAL_RISK_SPIKE": "regional risk spikes",
    "ASSET_RISK_SPIKE": "asset risk spikes",
}

SUBJECT_MAX_CHARS = 200
TELEGRAM_HEADLINE_MAX_CHARS = 300
TELEGRAM_BODY_MAX_CHARS = 2500  # Telegram allows 4096 visible characters: headline, facts and footer need the rest
SMS_GSM7_SEGMENT = 160  # septets in one GSM-7 segment
SMS_UCS2_SEGMENT = 70  # UTF-16 units in one UCS-2 segment (text outside GSM-7)
SMS_TEXT_MAX_CHARS = 306  # two GSM-7 segments: where one cannot hold the message
DIGEST_ITEMS_SHOWN = {"email": 100, "telegram": 25, "sms": 3}
ELLIPSIS = "..."
REFERENCE_MARK = "\x00reference\x00"  # PostgreSQL text cannot hold NUL: never in source text
UNSUBSCRIBE_MARK = "\x00unsubscribe\x00"  # where an email's own one-click unsubscribe link goes
CACHE_SIZE = 2048

_WHITESPACE = re.compile(r"\s+")
# Punctuation common in news titles that GSM-7 lacks, as its nearest GSM-7 text.
_GSM7_LOOKALIKES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
                                  "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...",
                                  "\u00a0": " ", "\u00b7": "-", "\u2022": "-"})


# --- small pieces -----------------------------------------------------------------------------

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


def utc(moment: datetime) -> str:
    """2026-11-30 06:12 UTC, whatever the session's time zone (a naive time is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short_utc(moment: datetime) -> str:
    """30 Nov 06:12 UTC, for SMS."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%d %b %H:%M UTC")


def score_text(score: float) -> str:
    """82, 82.5: a score as the index shows it, without a trailing .0."""
    return f"{score:.1f}".rstrip("0").rstrip(".")


def change_text(facts: EventFacts) -> str | None:
    """+24, +41% against the previous reading."""
    if facts.score is None or facts.previous_score is None:
        return None
    change = facts.score - facts.previous_score
    sign = "+" if change >= 0 else "-"
    percent = f", {sign}{abs(change) / facts.previous_score * 100:.0f}%" if facts.previous_score > 0 else ""
    return f"{sign}{score_text(abs(change))}{percent}"


def reference(message: OutgoingMessage) -> str:
    """What the footer names the message by: "delivery 42" or "digest 7"."""
    return f"{message.kind} {int(message.delivery_id)}"


def email_message_id(delivery_id: int, domain: str, kind: str = "delivery") -> str:
    """Stable per delivery (or digest), so a repeated send of the same row is recognisable downstream."""
    return f"<alerts-v2-{'digest' if kind == 'digest' else 'delivery'}-{int(delivery_id)}@{domain}>"


def html_paragraphs(text: str) -> str:
    """Plain text as escaped HTML paragraphs: blank lines split paragraphs, newlines become <br>."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "\n".join(
        '<p style="margin: 0 0 12px;">' + "<br>\n".join(escape(line) for line in p.splitlines()) + "</p>"
        for p in paragraphs
    )


def html_link(url: str, text: str) -> str:
    return f'<a href="{escape(url, quote=True)}">{escape(text)}</a>'


# --- what a message says, channel-neutral -------------------------------------------------------

def has_facts(message: OutgoingMessage) -> bool:
    return message.facts != NO_FACTS


def where_text(message: OutgoingMessage) -> str:
    return f"{message.region} ({', '.join(message.assets)})" if message.assets else message.region


def what_text(message: OutgoingMessage) -> str:
    category = f" ({message.facts.category})" if message.facts.category else ""
    return f"{alert_label(message.alert_type)}, severity {message.severity}/5{category}"


def when_text(message: OutgoingMessage) -> str | None:
    facts = message.facts
    raised = f"alert raised {utc(message.detected_at)}" if message.detected_at else None
    if facts.occurred_at is None:
        return raised
    happened = ("reading of " if facts.score is not None else "") + utc(facts.occurred_at)
    return f"{happened} ({raised})" if raised else happened


def spike_measure(message: OutgoingMessage) -> str:
    facts = message.facts
    window = f"{facts.window_days}-day " if facts.window_days else ""
    if message.alert_type == "ASSET_RISK_SPIKE" and message.assets:
        return f"{window}{message.assets[0]} risk score"
    return f"{window}risk index"


def why_text(message: OutgoingMessage) -> str | None:
    """Why the alert fired: the threshold it reached, or the rise."""
    facts = message.facts
    if message.alert_type == "HIGH_IMPACT_EVENT":
        if facts.threshold is None:
            return None
        return f"severity {message.severity}/5 is at or above the high-impact level of {score_text(facts.threshold)}/5"
    if facts.score is None:
        return None
    measure, score = spike_measure(message), score_text(facts.score)
    if facts.threshold is not None and facts.score >= facts.threshold:
        return f"the {measure} reached {score}, at or above the alert threshold of {score_text(facts.threshold)}"
    if facts.previous_score is not None and facts.rise_pct is not None:
        return (f"the {measure} rose from {score_text(facts.previous_score)} to {score}, a rise of "
                f"{score_text(facts.rise_pct)}% or more fires an alert")
    return f"the {measure} is {score}"


def baseline_text(message: OutgoingMessage) -> str | None:
    facts = message.facts
    if facts.score is None:
        return None
    if facts.previous_score is None or facts.previous_at is None:
        return "no earlier reading"
    return f"{score_text(facts.previous_score)} on {utc(facts.previous_at)} (now {score_text(facts.score)}, " \
           f"{change_text(facts)})"


def source_text(facts: EventFacts) -> str | None:
    if facts.source_url and facts.source_name:
        return f"{facts.source_name}: {facts.source_url}"
    return facts.source_url or facts.source_name


def lead_text(message: OutgoingMessage) -> str:
    """The paragraph under the headline: the source's summary; without facts, Phase A's text
    (with facts it would only repeat the lines below)."""
    if message.facts.summary:
        return message.facts.summary
    return "" if has_facts(message) else message.event_body.strip()


def fact_lines(message: OutgoingMessage) -> list[tuple[str, str]]:
    """(label, plain text) of the message's facts, in reading order; source text is not escaped here."""
    lines = [("Alert", what_text(message)), ("Where", where_text(message))]
    for label, text in (("When", when_text(message)), ("Why", why_text(message)),
                        ("Before", baseline_text(message)), ("Trend", message.facts.trend),
                        ("Source", source_text(message.facts))):
        if text:
            lines.append((label, text))
    return lines


def why_you_got_it(message: OutgoingMessage, channel_name: str) -> str:
    if message.kind == "digest":
        return (f"You receive this {message.period or 'daily'} digest because your alert settings "
                f"gather these alerts into one {channel_name} per {'hour' if message.period == 'hourly' else 'day'}.")
    covered = WHAT_PREFS_COVER.get(message.alert_type, f"{alert_label(message.alert_type).lower()} alerts")
    return f"You receive this {channel_name} because your alert preferences cover {covered} in {message.region}."


def change_preferences(settings: MessageSettings) -> str:
    if settings.preferences_url:
        return f"Change or stop these alerts: {settings.preferences_url}"
    return "To change or stop these alerts, open the alert preferences in your account."


UNSUBSCRIBE_TEXT = "Unsubscribe from these email alerts in one click"


def unsubscribe_link(message: OutgoingMessage, settings: MessageSettings | None = None) -> str | None:
    """The recipient's one-click unsubscribe URL (alerts.unsubscribe), for an email when configured."""
    return link_for(message.channel, message.user_id, settings or current_settings())


def list_unsubscribe_headers(message: OutgoingMessage, settings: MessageSettings | None = None) -> dict[str, str]:
    """List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) for an email when configured, else none."""
    link = unsubscribe_link(message, settings)
    if link is None:
        return {}
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": ONE_CLICK}


def link_for(channel: str, user_id: int | None, settings: MessageSettings) -> str | None:
    if channel != "email" or settings.unsubscribe is None or user_id is None:
        return None
    return settings.unsubscribe.link(user_id, channel)


def personal(text: str, reference_text: str, link: str | None, html: bool) -> str:
    """A marked text with the recipient's reference and unsubscribe link put in."""
    if html:
        reference_text, link = escape(reference_text), escape(link or "", quote=True)
    text = text.replace(REFERENCE_MARK, reference_text)
    return text.replace(UNSUBSCRIBE_MARK, link or "") if UNSUBSCRIBE_MARK in text else text


# --- the cache ------------------------------------------------------------------------------------

_cache: dict[tuple, object] = {}


def content_key(message: OutgoingMessage) -> tuple:
    """Every input of a message's texts except the recipient and the reference."""
    return content_key_of(message.kind, message.alert_type, message.severity, message.region, message.assets,
                          message.headline, message.event_body, message.detected_at, message.facts, message.items,
                          message.period, message.window_start)


def content_key_of(kind: str, alert_type: str, severity: int, region: str, assets: tuple[str, ...], headline: str,
                   event_body: str, detected_at: datetime | None, facts: EventFacts, items: tuple[DigestItem, ...],
                   period: str, window_start: datetime | None) -> tuple:
    return (kind, alert_type, severity, region, assets, headline, event_body, detected_at, facts, items, period,
            window_start)


def cached(what: str, message: OutgoingMessage, settings: MessageSettings,
           build: Callable[[OutgoingMessage, MessageSettings], str]) -> str:
    key = (what, settings, content_key(message))
    text = _cache.get(key)
    if text is None:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        text = _cache[key] = build(message, settings)
    return text  # type: ignore[return-value]


def clear_cache() -> None:
    _cache.clear()


# --- email ----------------------------------------------------------------------------------------

def email_subject(message: OutgoingMessage, settings: MessageSettings | None = None) -> str:
    """One line, safe for a header: [label severity/5] what happened."""
    return cached("subject", message, settings or current_settings(), build_email_subject)


def build_email_subject(message: OutgoingMessage, settings: MessageSettings) -> str:
    if message.kind == "digest":
        return shorten(one_line(message.headline), SUBJECT_MAX_CHARS)
    facts = message.facts
    title = one_line(message.headline)
    if facts.score is not None:
        change = f" ({change_text(facts)})" if facts.previous_score is not None else ""
        title = f"{spike_measure(message).capitalize()} {score_text(facts.score)}{change} in {one_line(message.region)}"
    return shorten(f"[{alert_label(message.alert_type)} {message.severity}/5] {title}", SUBJECT_MAX_CHARS)


def email_text(message: OutgoingMessage, reference_text: str | None = None,
               settings: MessageSettings | None = None, unsubscribe_text: str | None = None) -> str:
    """The plain-text part; reference_text replaces the footer's reference and unsubscribe_text the
    recipient's unsubscribe link (placeholders, so that the rest of the message can be built once for
    every recipient of an event)."""
    settings = settings or current_settings()
    marked = cached("text", message, settings, build_email_text)
    return personal(marked, reference_text or reference(message),
                    unsubscribe_text or unsubscribe_link(message, settings), html=False)


def build_email_text(message: OutgoingMessage, settings: MessageSettings) -> str:
    parts = [message.headline.strip()]
    if message.kind == "digest":
        parts.append(digest_text_lines(message, "email"))
    else:
        lead = lead_text(message)
        if lead:
            parts.append(lead)
        parts.append("\n".join(f"{label + ':':<8}{text}" for label, text in fact_lines(message)))
    one_click = f"{UNSUBSCRIBE_TEXT}: {UNSUBSCRIBE_MARK}\n" if settings.unsubscribe else ""
    parts.append(f"--\n{why_you_got_it(message, 'email')}\n{change_preferences(settings)}\n{one_click}"
                 f"Reference: {REFERENCE_MARK}")
    return "\n\n".join(parts) + "\n"


EMAIL_HTML_HEAD = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: Arial, Helvetica, sans-serif; color: #222; line-height: 1.4;">
<p style="color: #666; font-size: 13px; margin: 0;">{kicker}</p>
<h1 style="font-size: 20px; margin: 8px 0 16px;">{headline}</h1>
"""
EMAIL_HTML_FOOT = """\
<p style="color: #999; font-size: 12px; margin-top: 24px;">{why}<br>
{preferences}<br>
Reference: {reference}</p>
</body>
</html>
"""


def email_html(message: OutgoingMessage, reference_text: str | None = None,
               settings: MessageSettings | None = None, unsubscribe_text: str | None = None) -> str:
    settings = settings or current_settings()
    marked = cached("html", message, settings, build_email_html)
    return personal(marked, reference_text or reference(message),
                    unsubscribe_text or unsubscribe_link(message, settings), html=True)


def build_email_html(message: OutgoingMessage, settings: MessageSettings) -> str:
    kicker = (f"{alert_label('DIGEST')} &middot; {len(message.items)} alert{'s' if len(message.items) != 1 else ''}"
              if message.kind == "digest" else
              f"{escape(alert_label(message.alert_type))} &middot; severity {int(message.severity)}/5")
    head = EMAIL_HTML_HEAD.format(title=escape(build_email_subject(message, settings)), kicker=kicker,
                                  headline=escape(one_line(message.headline)))
    if message.kind == "digest":
        body = digest_html_list(message)
    else:
        body = html_paragraphs(lead_text(message)) + "\n" + facts_table(message)
    preferences = (f'Change or stop these alerts: {html_link(settings.preferences_url, settings.preferences_url)}'
                   if settings.preferences_url else escape(change_preferences(settings)))
    if settings.unsubscribe:
        preferences += f'<br>\n<a href="{UNSUBSCRIBE_MARK}">{escape(UNSUBSCRIBE_TEXT)}</a>'
    foot = EMAIL_HTML_FOOT.format(why=escape(why_you_got_it(message, "email")), preferences=preferences,
                                  reference=REFERENCE_MARK)
    return head + body.strip() + "\n" + foot


def facts_table(message: OutgoingMessage) -> str:
    rows = []
    for label, text in fact_lines(message):
        value = escape(text)
        if label == "Source" and message.facts.source_url:
            value = html_link(message.facts.source_url, message.facts.source_name or message.facts.source_url)
        rows.append(f'<tr><td style="padding: 2px 12px 2px 0; color: #666; vertical-align: top;">{label}</td>'
                    f"<td>{value}</td></tr>")
    return '<table style="border-collapse: collapse; margin-top: 16px; font-size: 14px;">\n' + "\n".join(rows) \
        + "\n</table>"


# --- digests --------------------------------------------------------------------------------------

def item_when(item: DigestItem, short: bool = False) -> str:
    if item.facts.occurred_at is None:
        return ""
    return ", " + (short_utc(item.facts.occurred_at) if short else utc(item.facts.occurred_at))


def shown_items(message: OutgoingMessage, channel: str) -> tuple[tuple[DigestItem, ...], int]:
    limit = DIGEST_ITEMS_SHOWN[channel]
    return message.items[:limit], max(len(message.items) - limit, 0)


def digest_text_lines(message: OutgoingMessage, channel: str) -> str:
    items, more = shown_items(message, channel)
    lines = []
    for item in items:
        lines.append(f"- [{item.severity}/5] {one_line(item.headline)} ({item.region}{item_when(item)})")
        if item.facts.source_url:
            lines.append(f"  {item.facts.source_url}")
    if more:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


def digest_html_list(message: OutgoingMessage) -> str:
    items, more = shown_items(message, "email")
    entries = []
    for item in items:
        source = f" &middot; {html_link(item.facts.source_url, 'source')}" if item.facts.source_url else ""
        entries.append(f"<li>[{int(item.severity)}/5] {escape(one_line(item.headline))} "
                       f"({escape(item.region + item_when(item))}){source}</li>")
    if more:
        entries.append(f"<li>... and {more} more</li>")
    return "<ul>\n" + "\n".join(entries) + "\n</ul>"


# --- Telegram -------------------------------------------------------------------------------------

def telegram_html(message: OutgoingMessage, settings: MessageSettings | None = None) -> str:
    """Text for sendMessage with parse_mode=HTML; every source value escaped, within Telegram's limit.
    Telegram's HTML knows only a few tags and the entities &lt; &gt; &amp; &quot;: no &middot; here."""
    return cached("telegram", message, settings or current_settings(), build_telegram_html)


def build_telegram_html(message: OutgoingMessage, settings: MessageSettings) -> str:
    if message.kind == "digest":
        first = f"<b>{alert_label('DIGEST')}</b> · {len(message.items)} alert{'s' if len(message.items) != 1 else ''}"
    else:
        first = f"<b>{escape(alert_label(message.alert_type))}</b> · severity {int(message.severity)}/5"
    parts = [f"{first}\n<b>{escape(shorten(one_line(message.headline), TELEGRAM_HEADLINE_MAX_CHARS))}</b>"]
    if message.kind == "digest":
        parts.append(telegram_digest_lines(message))
    else:
        lead = lead_text(message)
        if lead:
            parts.append(escape(shorten(lead, TELEGRAM_BODY_MAX_CHARS)))
        lines = []
        for label, text in fact_lines(message)[1:]:  # the first line says the alert already
            if label == "Source" and message.facts.source_url:
                lines.append(html_link(message.facts.source_url, f"Source: {message.facts.source_name or 'link'}"))
            else:
                lines.append(f"{label}: {escape(text)}")
        parts.append("\n".join(lines))
    footer = f"{why_you_got_it(message, 'message')} {change_preferences(settings)}"
    parts.append(f"<i>{escape(footer)}</i>")
    return "\n\n".join(parts)


def telegram_digest_lines(message: OutgoingMessage) -> str:
    """One line per event, as many as fit TELEGRAM_BODY_MAX_CHARS of visible text, then how many more."""
    items, _ = shown_items(message, "telegram")
    lines: list[str] = []
    visible = 0
    for item in items:
        plain = f"• [{item.severity}/5] {shorten(one_line(item.headline), 150)} ({item.region}{item_when(item)})"
        if visible + len(plain) + 8 > TELEGRAM_BODY_MAX_CHARS:
            break
        visible += len(plain) + 8
        line = f"• [{item.severity}/5] {escape(shorten(one_line(item.headline), 150))} " \
               f"({escape(item.region + item_when(item))})"
        if item.facts.source_url:
            line += " " + html_link(item.facts.source_url, "source")
        lines.append(line)
    if len(message.items) > len(lines):
        lines.append(f"... and {len(message.items) - len(lines)} more")
    return "\n".join(lines)


# --- SMS ------------------------------------------------------------------------------------------

def gsm7_septets(text: str) -> int | None:
    """How many GSM-7 septets text takes (an extension character takes two); None when it has a
    character outside GSM-7, which makes the whole SMS UCS-2."""
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def sms_segment_fits(text: str, segments: int = 1) -> bool:
    """Whether text fits that many SMS segments: 160 GSM-7 septets in one (153 each when
    concatenated), or 70 UTF-16 units outside GSM-7 (67 each when concatenated)."""
    septets = gsm7_septets(text)
    if septets is not None:
        return septets <= (SMS_GSM7_SEGMENT if segments == 1 else 153 * segments)
    units = len(text.encode("utf-16-le")) // 2
    return units <= (SMS_UCS2_SEGMENT if segments == 1 else 67 * segments)


def sms_clean(text: str) -> str:
    return one_line(text).translate(_GSM7_LOOKALIKES)


def sms_text(message: OutgoingMessage, settings: MessageSettings | None = None) -> str:
    """Plain text within one segment where it can: what, how severe, where, when, why; the less
    important parts (the link first) are left out, then the headline is cut to fit. Text outside
    GSM-7 (a name in another script) makes the SMS UCS-2, whose one segment of 70 characters
    cannot hold an alert: it may take two when the headline would otherwise be cut."""
    return cached("sms", message, settings or current_settings(), build_sms_text)


def build_sms_text(message: OutgoingMessage, settings: MessageSettings) -> str:
    prefix, flexible, tails = sms_parts(message)
    tails = [tail for tail in tails if tail] or [""]
    segments = 1 if sms_segment_fits(prefix + flexible + tails[0]) or gsm7_septets(prefix + flexible) is not None \
        else 2
    for kept in range(len(tails), 0, -1):  # drop the last tails first, never the first one
        text = prefix + flexible + "".join(tails[:kept])
        if sms_segment_fits(text, segments):
            return text
    room = len(flexible)
    while room > 20 and not sms_segment_fits(prefix + shorten(flexible, room) + tails[0], segments):
        room -= 1
    return shorten(prefix + shorten(flexible, room) + tails[0], SMS_TEXT_MAX_CHARS)


def sms_parts(message: OutgoingMessage) -> tuple[str, str, list[str]]:
    """(prefix, the part cut to fit, the tails in the order they are dropped last to first)."""
    facts = message.facts
    region = sms_clean(message.region)
    if message.kind == "digest":
        items, more = shown_items(message, "sms")
        listed = "; ".join(f"{i.severity}/5 {sms_clean(i.headline)}" for i in items)
        window = message.window_start.strftime("%Y-%m-%d %H:%M UTC" if message.period == "hourly" else "%Y-%m-%d") \
            if message.window_start else ""
        return (f"{message.period.capitalize() or 'Daily'} alert digest {window}, {len(message.items)} "
                f"alert{'s' if len(message.items) != 1 else ''}: ", listed + (f"; +{more} more" if more else ""), [])
    if facts.score is not None:
        label = f"{sms_clean(message.assets[0]).capitalize()} risk" if message.assets else "Risk"
        before = f" (was {score_text(facts.previous_score)})" if facts.previous_score is not None else ""
        when = f" at {short_utc(facts.occurred_at)}" if facts.occurred_at else ""
        threshold = f" Alerts from {score_text(facts.threshold)}." if facts.threshold is not None else ""
        rise = f" or +{score_text(facts.rise_pct)}%" if facts.rise_pct is not None and threshold else ""
        return (f"{label} spike {message.severity}/5: ", region,
                [f" {spike_measure(message)} {score_text(facts.score)}{before}{when}.",
                 threshold[:-1] + rise + "." if threshold else ""])
    label = "High-impact" if message.alert_type == "HIGH_IMPACT_EVENT" else alert_label(message.alert_type)
    moment = facts.occurred_at or message.detected_at
    when = f", {short_utc(moment)}" if moment else ""
    scope = region + (f" ({sms_clean(', '.join(message.assets))})" if message.assets else "")
    link = f" {facts.source_url}" if facts.source_url else ""
    return f"{label} {message.severity}/5: ", sms_clean(message.headline), [f". {scope}{when}.", link]


# --- per channel ----------------------------------------------------------------------------------

def channel_texts(message: OutgoingMessage, settings: MessageSettings | None = None,
                  reference_text: str | None = None) -> tuple[str | None, str, str | None]:
    """(subject, body, html) exactly as the message's channel's provider receives them: the event's
    texts for the channel, built once per event (one cache look-up), with the recipient's reference."""
    settings = settings or current_settings()
    return texts_for(message.channel, reference_text or reference(message), settings, content_key(message),
                     lambda: message, message.user_id)


def texts_for(channel: str, reference_text: str, settings: MessageSettings, key: tuple,
              message: Callable[[], OutgoingMessage], user_id: int | None = None) -> tuple[str | None, str, str | None]:
    """channel_texts() for the hot path: by content key, building the message (message()) only when
    the event's texts are not cached yet; user_id: the recipient, whose unsubscribe link an email carries."""
    subject, body, html = marked_texts_for(channel, settings, key, message)
    if channel != "email":
        return subject, body, html
    link = link_for(channel, user_id, settings)
    return subject, personal(body, reference_text, link, html=False), \
        personal(html, reference_text, link, html=True) if html is not None else None


def marked_texts_for(channel: str, settings: MessageSettings, key: tuple,
                     message: Callable[[], OutgoingMessage]) -> tuple[str | None, str, str | None]:
    """The channel's texts of a content key with REFERENCE_MARK where an email names its reference
    and UNSUBSCRIBE_MARK where it links its one-click unsubscribe (personal() fills both in)."""
    cache_key = ("texts", channel, settings, key)  # beside cached()'s ("subject", ...) entries
    texts = _cache.get(cache_key)
    if texts is None:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        texts = _cache[cache_key] = build_marked_texts(message(), settings)
    return texts  # type: ignore[return-value]


def build_marked_texts(message: OutgoingMessage, settings: MessageSettings) -> tuple[str | None, str, str | None]:
    if message.channel == "email":
        return (build_email_subject(message, settings), build_email_text(message, settings),
                build_email_html(message, settings))
    if message.channel == "telegram":
        return None, build_telegram_html(message, settings), None
    return None, build_sms_text(message, settings), None
