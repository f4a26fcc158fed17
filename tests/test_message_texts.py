"""What each message says given its facts: why it fired, the baseline, the source link (http(s) only,
escaped per format), the preferences footer (ALERTS_PREFERENCES_URL), SMS within one GSM-7 segment,
Telegram within its HTML subset and length."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from alerts import templates
from alerts.errors import UsageError
from alerts.event_facts import web_link
from alerts.message import DigestItem, EventFacts
from alerts.message_settings import MessageSettings, settings_from_env
from tests.conftest import run_runner
from tests.fakes import HOSTILE_HEADLINE, outgoing
from tests.fakes.telegram_api import html_problem

AT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
PREFS = MessageSettings(preferences_url="https://app.example.com/settings/alerts")
SPIKE = EventFacts(occurred_at=AT, score=65.0, previous_score=50.0, previous_at=AT - timedelta(days=1), threshold=70,
                   rise_pct=20, window_days=7)


def spike(**facts: object):  # noqa: ANN201
    values = {**SPIKE.__dict__, **facts}
    return outgoing(alert_type="REGIONAL_RISK_SPIKE", region="Asia", assets=(), headline="Regional risk spike in Asia",
                    facts=EventFacts(**values))  # type: ignore[arg-type]


def test_a_spike_says_whether_it_fired_on_the_threshold_or_on_the_rise():
    on_rise = templates.email_text(spike(), settings=PREFS)
    assert "Why:    the 7-day risk index rose from 50 to 65, a rise of 20% or more fires an alert" in on_rise
    assert "Before: 50 on 2026-11-29 05:00 UTC (now 65, +15, +30%)" in on_rise
    on_threshold = templates.email_text(spike(score=75.0), settings=PREFS)
    assert "Why:    the 7-day risk index reached 75, at or above the alert threshold of 70" in on_threshold
    first = templates.email_text(spike(previous_score=None, previous_at=None), settings=PREFS)
    assert "Before: no earlier reading" in first
    assert templates.email_subject(spike(), settings=PREFS) == \
        "[Regional risk spike 4/5] 7-day risk index 65 (+15, +30%) in Asia"


def test_with_facts_the_high_impact_text_does_not_repeat_phase_as_sentence():
    facts = EventFacts(occurred_at=AT, threshold=4, category="weather")
    message = outgoing(region="Asia", assets=(), headline="Typhoon closes ports",
                       event_body="Severity 4/5 event in Asia (weather).", facts=facts)
    text = templates.email_text(message, settings=PREFS)
    assert "Severity 4/5 event in Asia" not in text
    assert text.startswith("Typhoon closes ports\n\nAlert:  High-impact event, severity 4/5 (weather)\n"
                           "Where:  Asia\nWhen:   2026-11-30 05:00 UTC\n")


def test_the_footer_says_why_and_where_to_change_preferences():
    message = outgoing(region="Europe")
    text = templates.email_text(message, settings=PREFS)
    assert "You receive this email because your alert preferences cover high-impact events in Europe." in text
    assert "Change or stop these alerts: https://app.example.com/settings/alerts" in text
    assert '<a href="https://app.example.com/settings/alerts">' in templates.email_html(message, settings=PREFS)
    assert "https://app.example.com/settings/alerts" in templates.telegram_html(message, settings=PREFS)
    without = templates.email_text(message, settings=MessageSettings())
    assert "open the alert preferences in your account" in without and "http" not in without


@pytest.mark.parametrize("value", ["app.example.com/settings", "javascript:alert(1)", "ftp://example.com/x",
                                   "https://", "https://app.example.com/a b"])
def test_a_preferences_url_that_is_not_a_web_address_is_refused(value):
    with pytest.raises(UsageError, match="ALERTS_PREFERENCES_URL=.* is not a web address"):
        settings_from_env({"ALERTS_PREFERENCES_URL": value})
    assert settings_from_env({"ALERTS_PREFERENCES_URL": " https://a.example/p "}).preferences_url == "https://a.example/p"


def test_the_runner_refuses_a_bad_preferences_url_before_connecting():
    result = run_runner("postgresql://postgres@127.0.0.1:1/nowhere", "--phase", "c",
                        env={"ALERTS_SENDER": "console", "ALERTS_PREFERENCES_URL": "settings page"}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "ALERTS_PREFERENCES_URL='settings page' is not a web address" \
        in result.stderr


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "https://a.example/x y",
                                 "//a.example/x", "https://", "mailto:x@example.com", "ftp://files.example.com/x", "https://a.example/\u202e",
                                 'https://a.example/"><script>'])
def test_only_http_links_are_kept(url):
    assert web_link(url) is None
    assert web_link("https://news.example.com/a?b=1") == "https://news.example.com/a?b=1"


def test_a_source_link_is_escaped_per_format():
    facts = EventFacts(occurred_at=AT, threshold=4, source_url='https://x.example/"><script>a()</script>',
                       source_name='<img src=x onerror="y()">')
    message = outgoing(headline=HOSTILE_HEADLINE, facts=facts)
    html = templates.email_html(message, settings=PREFS)
    assert '<a href="https://x.example/&quot;&gt;&lt;script&gt;a()&lt;/script&gt;">' in html
    assert "&lt;img src=x onerror=&quot;y()&quot;&gt;</a>" in html and "<script>" not in html
    telegram = templates.telegram_html(message, settings=PREFS)
    assert html_problem(telegram) is None and "<script>" not in telegram and "<img" not in telegram


@pytest.mark.parametrize("message", [
    outgoing(headline="Tanker seized near the Strait of Hormuz " * 8, facts=EventFacts(occurred_at=AT, threshold=4,
             source_url="https://news.example.com/" + "x" * 200)),
    spike(),
    outgoing(alert_type="ASSET_RISK_SPIKE", region="North-West Europe " * 10, assets=("freight",),
             facts=EventFacts(occurred_at=AT, score=91.5, previous_score=70.25, previous_at=AT, threshold=70,
                              window_days=7)),
    outgoing(headline="\u201cSmart\u201d quotes \u2013 and an ellipsis\u2026 {braces} \u20ac"),
], ids=["long-high-impact", "regional", "asset-long-region", "typography"])
def test_sms_fits_one_gsm7_segment(message):
    text = templates.sms_text(message, settings=PREFS)
    assert templates.gsm7_septets(text) is not None, text
    assert templates.sms_segment_fits(text), (len(text), text)


def test_sms_in_another_script_keeps_its_headline_within_two_ucs2_segments():
    message = outgoing(headline="上海港因台风关闭", region="亚洲", assets=())
    text = templates.sms_text(message, settings=PREFS)
    assert text == "High-impact 4/5: 上海港因台风关闭. 亚洲." and templates.sms_segment_fits(text)
    long = templates.sms_text(outgoing(headline="台风" * 100, region="亚洲", assets=()), settings=PREFS)
    assert templates.gsm7_septets(long) is None and templates.sms_segment_fits(long, segments=2)
    assert long.endswith("... 亚洲.")


def test_a_long_digest_stays_within_each_channels_limit():
    items = tuple(DigestItem(n, "HIGH_IMPACT_EVENT", 4, "Europe", f"Event {n} " + "&<>" * 60,
                             EventFacts(occurred_at=AT, source_url=f"https://n.example/{n}")) for n in range(300))
    digest = outgoing(kind="digest", alert_type="DIGEST", headline="Your daily alert digest for 2026-11-29: 300 alerts",
                      items=items, period="daily", window_start=AT, channel="telegram")
    telegram = templates.telegram_html(digest, settings=PREFS)
    assert html_problem(telegram) is None
    visible = html.unescape(re.sub(r"<[^<>]*>", "", telegram))  # what Telegram counts, as its fake does
    shown = telegram.count("\n• [4/5] ")
    assert len(visible) <= 4096 and 1 <= shown <= 25 and f"... and {300 - shown} more" in telegram
    assert templates.email_text(digest, settings=PREFS).count("\n- [4/5] ") == 100
    sms = templates.sms_text(digest, settings=PREFS)
    assert sms.startswith("Daily alert digest 2026-11-30, 300 alerts: 4/5 Event 0 ") and templates.sms_segment_fits(sms)
