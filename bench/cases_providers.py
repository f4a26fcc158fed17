"""Phase C through real loopback providers that answer after a delay, as providers far away do:
an SMTP server (aiosmtpd) that answers DATA after D ms and fake Telegram and Twilio HTTP APIs that
answer after D ms, each serving many connections at once. Each case runs `runner.py --phase c`
as a real process with default settings and reads, at the provider, when each message arrived.

    provider_email         N emails, SMTP at 50 ms: >= 0.8 x concurrency/latency and >= 300/s
    provider_telegram      N Telegram messages to distinct chats, API at 150 ms: the configured
                           rate within 5 %, never exceeded over any one-second window
    provider_email_451     N emails, SMTP at 50 ms, 2 % answered 451 once: the same rate; after
                           the retries every message accepted exactly once
    provider_split         email 50 ms, Telegram 150 ms, SMS 300 ms in one run: each channel within
                           10 % of its rate alone (SMS alone is measured here too)

A run's rate is its messages over the time from the runner's start to the provider's last
accepted message (start-up and claims included); for a paced channel, (N - 1) over the time
between the first and the last message, the rate the provider sees. Each row prints the rate
(rows/s), the limit it is compared against (in the variant; baseline s is the time the limit
allows) and the ratio of the rate to that limit.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from alerts.senders.limits import DEFAULT_LIMITS
from bench.cases import Context
from bench.database import reset_tables, settle
from bench.procs import Child, Finished
from bench.report import Result
from tests.fakes.smtp_server import FakeSmtpServer, message_id_of
from tests.fakes.telegram_api import FAKE_BOT_TOKEN, FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi

log = logging.getLogger("bench")
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO

EMAIL_FROM = "alerts@alerts.example.com"
BOT_TOKEN = FAKE_BOT_TOKEN
TWILIO_SID, TWILIO_TOKEN = "AC" + "0123456789abcdef" * 2, "f" * 32
EMAIL_LATENCY, TELEGRAM_LATENCY, SMS_LATENCY = 0.050, 0.150, 0.300
RATE_FLOOR = 300.0


@dataclass(frozen=True)
class Sizes:
    email: int
    telegram: int
    split_email: int
    split_telegram: int
    split_sms: int


SIZES = {
    "tiny": Sizes(email=200, telegram=60, split_email=400, split_telegram=60, split_sms=3),
    "small": Sizes(email=2_000, telegram=600, split_email=3_000, split_telegram=300, split_sms=10),
    "medium": Sizes(email=10_000, telegram=2_000, split_email=6_000, split_telegram=600, split_sms=20),
    "large": Sizes(email=10_000, telegram=10_000, split_email=6_000, split_telegram=600, split_sms=20),
}


# ---------------------------------------------------------------- data and the runner


def queue(conn: psycopg.Connection, counts: dict[str, int]) -> None:
    """One event; counts[channel] users each with one queued instant delivery of that channel
    (distinct destinations: userN@example.com, chat 100000+N, +1555000000N)."""
    reset_tables(conn)
    users = max(counts.values())
    conn.execute(
        "INSERT INTO users (email, email_verified, telegram_chat_id, phone_number)"
        " SELECT 'user' || g || '@example.com', true, (100000 + g)::text, '+1555' || lpad(g::text, 7, '0')"
        "   FROM generate_series(1, %s) g", [users])
    conn.execute(
        "INSERT INTO alert_events (alert_type, scope_region, severity, headline, body, driver_event_ids,"
        "                          event_fingerprint, fanout_completed_at)"
        " VALUES ('HIGH_IMPACT_EVENT', 'Europe', 5, 'Pipeline outage', 'Severity 5/5 event in Europe (supply).',"
        "         ARRAY[1]::bigint[], 'BENCH:provider:' || gen_random_uuid(), now())")
    for channel, count in counts.items():
        conn.execute(
            "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
            " SELECT (SELECT max(id) FROM alert_events), u.id, %s, 'instant'"
            "   FROM users u WHERE u.id <= (SELECT min(id) - 1 FROM users) + %s", [channel, count])
    conn.execute("UPDATE alerts_config SET retry_base = '0.2 seconds', retry_max = '1 second', retry_jitter_pct = 0")
    settle(conn, analyze=True)


def run_runner(ctx: Context, env: dict[str, str]) -> tuple[float, Finished]:
    """Start `runner.py --phase c`; (its start time.monotonic(), how it ended)."""
    started = time.monotonic()
    child = Child(["runner.py", "--phase", "c"],
                  env={"DATABASE_URL": ctx.url, "ALERTS_MAX_SEND_PER_RUN": "1000000", "ALERTS_LOG_LEVEL": "ERROR",
                       **env})
    done = child.wait()
    if done.exit_code != 0:
        raise RuntimeError(f"runner.py --phase c exited {done.exit_code}: {done.stderr[-2000:]}")
    return started, done


def run_counts(done: Finished) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute(
        "SELECT channel || ':' || status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall()}


def smtp_env(server: FakeSmtpServer) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{server.port}?starttls=never", "EMAIL_FROM": EMAIL_FROM}


def telegram_env(api: FakeTelegramApi) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_BASE": api.base_url}


def twilio_env(api: FakeTwilioApi) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM": "+15017122661",
            "TWILIO_API_BASE": api.base_url}


# ---------------------------------------------------------------- what the provider saw


def rate_from_start(started: float, times: list[float]) -> float:
    return len(times) / (max(times) - started) if times else 0.0


def paced_rate(times: list[float]) -> float:
    """(N - 1) over the span between the first and the last arrival."""
    ordered = sorted(times)
    return (len(ordered) - 1) / (ordered[-1] - ordered[0]) if len(ordered) > 1 else 0.0


def busiest_second(times: list[float]) -> int:
    """The most arrivals within any window of one second."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


# ---------------------------------------------------------------- the cases


def email_case(ctx: Context, count: int, defer_share: float = 0.0) -> Result:
    concurrency = DEFAULT_LIMITS["email"].concurrency
    limit = concurrency / EMAIL_LATENCY
    queue(ctx.conn, {"email": count})
    with FakeSmtpServer() as server:
        server.handler.data_delay, server.handler.defer_share = EMAIL_LATENCY, defer_share
        started, done = run_runner(ctx, smtp_env(server))
        first_run = [m.at for m in server.messages]
        rate = rate_from_start(started, first_run)
        runs = 1
        while defer_share and status_counts(ctx.conn).get("email:queued") and runs < 20:
            time.sleep(0.3)  # the retry backoff of the deferred ones
            run_runner(ctx, smtp_env(server))
            runs += 1
        ids = [message_id_of(m.raw) for m in server.messages]
    counts, statuses = run_counts(done), status_counts(ctx.conn)
    once = len(ids) == len(set(ids)) == count and statuses == {"email:sent": count}
    target = f">= 0.8 x {concurrency}/{EMAIL_LATENCY * 1000:.0f}ms = {0.8 * limit:.0f}/s and >= {RATE_FLOOR:.0f}/s"
    met = rate >= 0.8 * limit and rate >= RATE_FLOOR and (once if defer_share else len(first_run) == count)
    name = "provider_email_451" if defer_share else "provider_email"
    variant = f"SMTP {EMAIL_LATENCY * 1000:.0f}ms" + (f", {defer_share:.0%} 451 once" if defer_share else "") \
        + f"; limit {concurrency}/{EMAIL_LATENCY:g}s = {limit:.0f}/s"
    return ctx.result(name, variant, len(first_run), len(first_run) / rate if rate else 0.0,
                      target + ("; every message accepted exactly once" if defer_share else ""), met,
                      baseline_seconds=count / limit, ratio_to_baseline=rate / limit, peak_rss_mb=done.peak_rss_mb,
                      messages_per_s=rate, limit_per_s=limit, concurrency=concurrency, latency_s=EMAIL_LATENCY,
                      first_to_last_per_s=paced_rate(first_run), runner_start_to_first_s=min(first_run) - started,
                      accepted_total=len(ids), distinct_accepted=len(set(ids)), runs=runs, statuses=statuses,
                      deferred=len(server.handler.deferred), first_run_counts=counts)


def telegram_case(ctx: Context, count: int) -> Result:
    limits = DEFAULT_LIMITS["telegram"]
    assert limits.per_second is not None
    queue(ctx.conn, {"telegram": count})
    with FakeTelegramApi(BOT_TOKEN) as api:
        api.delay = TELEGRAM_LATENCY
        _, done = run_runner(ctx, telegram_env(api))
        times = [r.at for r in api.requests]
        warm = [r.at for r in api.requests if not r.first_on_connection]  # arrival not delayed by connecting
    rate, busiest, busiest_warm = paced_rate(times), busiest_second(times), busiest_second(warm)
    within = abs(rate - limits.per_second) <= 0.05 * limits.per_second
    met = within and busiest <= limits.per_second and len(times) == count
    return ctx.result("provider_telegram", f"Bot API {TELEGRAM_LATENCY * 1000:.0f}ms, distinct chats; "
                      f"limit {limits.per_second:g}/s, busiest second {busiest} ({busiest_warm} without "
                      "each connection's first request)", len(times),
                      (len(times) - 1) / rate if rate else 0.0,
                      f"{limits.per_second:g}/s within 5 %, <= {limits.per_second:g} in any 1 s", met,
                      baseline_seconds=(count - 1) / limits.per_second, ratio_to_baseline=rate / limits.per_second,
                      peak_rss_mb=done.peak_rss_mb, messages_per_s=rate, limit_per_s=limits.per_second,
                      busiest_second=busiest, busiest_second_without_connects=busiest_warm,
                      connections=len(times) - len(warm), statuses=status_counts(ctx.conn))


def with_providers(run: Callable[[FakeSmtpServer, FakeTelegramApi, FakeTwilioApi], dict[str, list[float]]]
                   ) -> dict[str, list[float]]:
    with FakeSmtpServer() as smtp, FakeTelegramApi(BOT_TOKEN) as bot, FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as sms:
        smtp.handler.data_delay, bot.delay, sms.delay = EMAIL_LATENCY, TELEGRAM_LATENCY, SMS_LATENCY
        return run(smtp, bot, sms)


def channel_rates(ctx: Context, counts: dict[str, int]) -> tuple[dict[str, float], dict[str, int], float]:
    """Send counts per channel in one run; each channel's rate as its provider saw it, and the RSS."""
    rss = 0.0

    def run(smtp: FakeSmtpServer, bot: FakeTelegramApi, sms: FakeTwilioApi) -> dict[str, list[float]]:
        nonlocal rss
        queue(ctx.conn, counts)
        _, done = run_runner(ctx, {**smtp_env(smtp), **telegram_env(bot), **twilio_env(sms)})
        rss = done.peak_rss_mb
        return {"email": [m.at for m in smtp.messages], "telegram": [r.at for r in bot.requests],
                "sms": [r.at for r in sms.requests]}

    times = with_providers(run)
    return ({c: paced_rate(times[c]) for c in counts}, {c: len(times[c]) for c in counts}, rss)


def split_case(ctx: Context, sizes: Sizes) -> list[Result]:
    wanted = {"email": sizes.split_email, "telegram": sizes.split_telegram, "sms": sizes.split_sms}
    solo = {channel: channel_rates(ctx, {channel: count})[0][channel] for channel, count in wanted.items()}
    together, sent, rss = channel_rates(ctx, wanted)
    results = []
    for channel, count in wanted.items():
        ratio = together[channel] / solo[channel] if solo[channel] else 0.0
        results.append(ctx.result(
            "provider_split", f"{channel} beside the others; alone {solo[channel]:.1f}/s", sent[channel],
            (sent[channel] - 1) / together[channel] if together[channel] else 0.0,
            "within 10 % of its rate alone", abs(ratio - 1) <= 0.10 and sent[channel] == count,
            baseline_seconds=(count - 1) / solo[channel] if solo[channel] else None, ratio_to_baseline=ratio,
            peak_rss_mb=rss, messages_per_s=together[channel], limit_per_s=solo[channel],
            latency_s={"email": EMAIL_LATENCY, "telegram": TELEGRAM_LATENCY, "sms": SMS_LATENCY}[channel]))
    return results


def provider_cases(ctx: Context, wanted: set[str]) -> list[Result]:
    sizes = SIZES[ctx.scale.name]
    results: list[Result] = []
    if "provider_email" in wanted:
        results.append(email_case(ctx, sizes.email))
    if "provider_telegram" in wanted:
        results.append(telegram_case(ctx, sizes.telegram))
    if "provider_email_451" in wanted:
        results.append(email_case(ctx, sizes.email, defer_share=0.02))
    if "provider_split" in wanted:
        results.extend(split_case(ctx, sizes))
    return results
