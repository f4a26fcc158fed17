"""alerts.templates: what each channel says, and that source text is escaped wherever it becomes HTML."""

from html.parser import HTMLParser

from alerts import templates
from tests.fakes import ESCAPED_HEADLINE, HOSTILE_HEADLINE, outgoing
from tests.fakes.telegram_api import html_problem


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


def tags_in(html: str) -> set[str]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


def test_email_subject_is_one_header_safe_line():
    message = outgoing(alert_type="REGIONAL_RISK_SPIKE", severity=5, headline="Risk up\r\nBcc: victim@example.com")

    subject = templates.email_subject(message)

    assert subject == "[Regional risk spike 5/5] Risk up Bcc: victim@example.com"
    assert len(templates.email_subject(outgoing(headline="x" * 1000))) == templates.SUBJECT_MAX_CHARS


def test_email_text_is_plain_and_complete():
    text = templates.email_text(outgoing(headline=HOSTILE_HEADLINE, delivery_id=42))

    assert text.startswith(HOSTILE_HEADLINE + "\n\nFlows stopped at 06:00 UTC.\nRepairs expected within 48 hours.")
    assert "Alert:  High-impact event, severity 4/5" in text and "Where:  europe (gas, oil)" in text
    assert "Reference: delivery 42" in text


def test_email_html_escapes_every_source_value():
    message = outgoing(headline=HOSTILE_HEADLINE, event_body='<img src=x onerror="steal()">\n\nSecond <i>para</i>',
                       region="<r>", assets=("<a>",))

    html = templates.email_html(message)

    assert f"<h1 style=\"font-size: 20px; margin: 8px 0 16px;\">{ESCAPED_HEADLINE}</h1>" in html
    assert "&lt;img src=x onerror=&quot;steal()&quot;&gt;" in html
    assert "Second &lt;i&gt;para&lt;/i&gt;" in html
    assert "&lt;r&gt; (&lt;a&gt;)" in html
    assert tags_in(html) <= {"html", "head", "meta", "title", "body", "p", "h1", "br", "table", "tr", "td"}


def test_email_html_keeps_paragraphs_and_line_breaks():
    html = templates.html_paragraphs("one\ntwo\n\nthree")
    assert html == '<p style="margin: 0 0 12px;">one<br>\ntwo</p>\n<p style="margin: 0 0 12px;">three</p>'


def test_message_id_is_stable_per_delivery():
    assert templates.email_message_id(42, "example.com") == "<alerts-v2-delivery-42@example.com>"


def test_telegram_html_is_escaped_and_accepted_by_telegrams_parser():
    text = templates.telegram_html(outgoing(headline=HOSTILE_HEADLINE, event_body="a < b && c > d"))

    assert text.startswith("<b>High-impact event</b> · severity 4/5\n<b>" + ESCAPED_HEADLINE + "</b>")
    assert "a &lt; b &amp;&amp; c &gt; d" in text
    assert html_problem(text) is None


def test_telegram_html_stays_within_telegrams_limit():
    text = templates.telegram_html(outgoing(headline="h" * 5000, event_body="&" * 10000))

    visible = text.replace("&amp;", "&").replace("<b>", "").replace("</b>", "")
    assert len(visible) <= 4096
    assert html_problem(text) is None


def test_sms_is_short_plain_text():
    text = templates.sms_text(outgoing(headline="Pipeline <outage>\nin the North Sea"))

    assert text == "High-impact 4/5: Pipeline <outage> in the North Sea. europe (gas, oil)."
    long = templates.sms_text(outgoing(headline="word " * 500))
    assert templates.sms_segment_fits(long) and len(long) <= 160
    assert long.endswith("... europe (gas, oil).")


def test_unknown_alert_types_get_a_readable_label():
    assert templates.alert_label("NEW_KIND_OF_ALERT") == "New kind of alert"
