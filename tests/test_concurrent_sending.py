"""Phase C with many messages in flight, through real providers on loopback that answer after a
delay: the configured concurrency is used and never exceeded, each message goes out once, the
channel's pace holds over every second (overall and per chat), a 429 slows the channel down for the
rest of the run, and claims are sized from the rate and the lease."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from alerts.concurrent_delivery import claim_size
from alerts.senders.base import LocalSender
from tests import seed
from tests.conftest import run_runner
from tests.fakes.smtp_server import FakeSmtpServer, message_id_of
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
TWILIO_SID, TWILIO_TOKEN = "AC" + "0123456789abcdef" * 2, "f" * 32
_DELIVERY_ID = re.compile(r"<alerts-v2-delivery-(\d+)@")


def fan_out(conn: psycopg.Connection, users: int, events: int, channel: str) -> int:
    seed.population(conn, users=users, events=events, channels=(channel,))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    row = conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()
    assert row is not None
    return int(row[0])


def smtp_env(server: FakeSmtpServer) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{server.port}?starttls=never", "EMAIL_FROM": "alerts@example.com"}


def telegram_env(api: FakeTelegramApi) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_BASE": api.base_url}


def statuses(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM user_alert_deliveries GROUP BY 1").fetchall())


def busiest_second(times: list[float]) -> int:
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def throttle_once(api: FakeTelegramApi, chat: str) -> None:
    """The API answers 429 (retry_after 1 s) to the first message for chat, then accepts it."""
    api.throttled_chats[chat] = 1
    answer = api.send_message

    def send_message(params: dict[str, object]):  # noqa: ANN202 - a Reply
        reply = answer(params)
        api.throttled_chats.pop(str(params.get("chat_id")), None)
        return reply

    api.send_message = send_message  # type: ignore[method-assign]


def counts_of(result) -> dict:  # noqa: ANN001 - a CompletedProcess
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("concurrency", [8, 3])
def test_emails_go_out_as_many_at_once_as_configured_and_each_once(conn, db_url, concurrency):
    total = fan_out(conn, users=120, events=1, channel="email")
    with FakeSmtpServer() as server:
        server.handler.data_delay = 0.1
        counts = counts_of(run_runner(db_url, "--phase", "c", env={
            **smtp_env(server), "ALERTS_CONCURRENCY_EMAIL": str(concurrency)}))
        ids = [int(_DELIVERY_ID.search(message_id_of(m.raw)).group(1)) for m in server.messages]  # type: ignore[union-attr]
        most = server.handler.most_in_flight
    assert counts["sent"] == total == len(ids) == len(set(ids))
    assert statuses(conn) == {"sent": total}
    assert most == concurrency, f"{most} DATA answers were awaited at once, {concurrency} configured"


def test_telegram_keeps_its_rate_over_every_second(conn, db_url):
    total = fan_out(conn, users=70, events=1, channel="telegram")
    with FakeTelegramApi(BOT_TOKEN) as api:
        api.delay = 0.1
        counts = counts_of(run_runner(db_url, "--phase", "c", env={
            **telegram_env(api), "ALERTS_RATE_LIMIT_TELEGRAM_PER_SECOND": "20"}))
        times = sorted(r.at for r in api.requests)
        # a connection's first request also waited for the handshake and the fake's new thread
        paced = [r.at for r in api.requests if not r.first_on_connection]
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert counts["sent"] == total == len(times)
    assert busiest_second(paced) <= 20, f"{busiest_second(paced)} requests within one second, 20/s configured"
    assert rate >= 0.9 * 20, f"{rate:.1f}/s sent, 20/s configured"


def test_one_chat_gets_at_most_one_message_a_second(conn, db_url):
    total = fan_out(conn, users=1, events=4, channel="telegram")
    with FakeTelegramApi(BOT_TOKEN) as api:
        counts = counts_of(run_runner(db_url, "--phase", "c", env=telegram_env(api)))
        times = sorted(r.at for r in api.requests)
    assert counts["sent"] == total == 4
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.99, gaps


def test_a_429_holds_telegram_and_slows_it_down_for_the_rest_of_the_run(conn, db_url):
    total = fan_out(conn, users=50, events=1, channel="telegram")
    with FakeTelegramApi(BOT_TOKEN) as api:
        throttle_once(api, "100005")
        counts = counts_of(run_runner(db_url, "--phase", "c", env={
            **telegram_env(api), "ALERTS_RATE_LIMIT_TELEGRAM_PER_SECOND": "20"}))
        [throttled_at] = [r.at for r in api.requests if r.json()["chat_id"] == "100005"][:1]
        after = [r for r in api.requests if r.at > throttled_at + 0.05]  # not those already on their way
    assert min(r.at for r in after) - throttled_at >= 0.95, "the channel was not held for retry_after"
    paced = [r.at for r in after if not r.first_on_connection]  # see test_telegram_keeps_its_rate_over_every_second
    assert busiest_second(paced) <= 10, f"{busiest_second(paced)} within a second after the 429: not slowed to 10/s"
    assert counts["sent"] == total - 1 and counts["requeued"] == 1


def test_rows_released_by_a_hold_and_claimed_again_count_once_against_the_run_cap(conn, db_url):
    """A 429 holds Telegram for a second: the rows claimed for it are released and claimed again
    when the hold ends. ALERTS_MAX_SEND_PER_RUN=30 still sends 30 messages (one of them the
    throttled one's retry is not: it waits for its backoff), not 30 minus the released rows."""
    fan_out(conn, users=50, events=1, channel="telegram")
    with FakeTelegramApi(BOT_TOKEN) as api:
        throttle_once(api, "100002")
        counts = counts_of(run_runner(db_url, "--phase", "c", env={
            **telegram_env(api), "ALERTS_RATE_LIMIT_TELEGRAM_PER_SECOND": "20", "ALERTS_MAX_SEND_PER_RUN": "30"}))
    assert counts["released"] > 0, counts  # the hold did release claimed rows
    assert counts["sent"] + counts["requeued"] == 30 and counts["stopped_early"], counts
    assert statuses(conn).get("sending", 0) == 0


class Paced(LocalSender):
    def __init__(self, rate: float | None) -> None:
        self.rate = rate

    def per_second(self, channel: str | None) -> float | None:
        return self.rate


def test_a_claim_is_what_the_channel_sends_in_half_its_lease():
    from alerts.concurrent_delivery import Lane

    lane = Lane("sms", threads=4)
    assert claim_size(Paced(1.0), lane, batch_size=500, lease_seconds=300, now=0) == 150
    assert claim_size(Paced(30.0), lane, batch_size=500, lease_seconds=300, now=0) == 500
    assert claim_size(Paced(0.01), lane, batch_size=500, lease_seconds=60, now=0) == 1
    assert claim_size(Paced(None), lane, batch_size=500, lease_seconds=300, now=0) == 500
    lane.first_result_at, lane.sent = 0.0, 20  # 20 in 10 s measured: 2/s
    assert claim_size(Paced(None), lane, batch_size=500, lease_seconds=60, now=10.0) == 60


def test_a_late_sender_pushes_the_next_turn_back_instead_of_letting_two_bunch():
    """The channel's next turn counts from when the previous message actually left: a thread that
    woke 0.5 s late (a loaded machine) does not let the message after it go out right behind it."""
    from alerts.senders.limits import ChannelLimits
    from alerts.senders.pacing import SPACING_MARGIN, Pacer

    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = Pacer(ChannelLimits(concurrency=10, per_second=10.0), clock=lambda: clock[0], sleep=sleep)
    spacing = (1 + SPACING_MARGIN) / 10
    assert pacer.pass_gate() == 0.0
    clock[0] = 0.5  # the second message's thread was scheduled late
    assert pacer.pass_gate() == 0.5
    assert pacer.pass_gate() == pytest.approx(0.5 + spacing), "a turn was taken less than 1/rate after a late one"
    assert slept == [pytest.approx(spacing)]


def test_slow_sms_is_claimed_a_lease_share_at_a_time_and_none_outlives_its_lease(conn, db_url):
    """40 SMS at 4/s take 10 s, the lease is 4 s: claims of 8 (4/s x 4 s x 0.5) keep every claimed row
    within its lease, so no other runner's reclaim could take one back while it is being sent."""
    total = fan_out(conn, users=40, events=1, channel="sms")
    conn.execute("UPDATE alerts_config SET lease_duration = '4 seconds'")
    with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as api:
        api.delay = 0.05
        env = {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM": "+15017122661",
               "TWILIO_API_BASE": api.base_url, "ALERTS_RATE_LIMIT_SMS_PER_SECOND": "4"}
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(run_runner, db_url, "--phase", "c", env=env)
            overdue = []
            while not run.done():
                row = conn.execute("SELECT count(*) FROM user_alert_deliveries"
                                   " WHERE status = 'sending' AND lease_expires_at < now()").fetchone()
                overdue.append(row[0] if row else -1)
                time.sleep(0.2)
            counts = counts_of(run.result())
        sent = len(api.requests)
    assert counts["sent"] == total == sent and counts["released"] == 0
    assert counts["batches"] >= total // 8, counts
    assert max(overdue) == 0, f"rows were still being sent after their lease ended: {overdue}"
    assert statuses(conn) == {"sent": total}
