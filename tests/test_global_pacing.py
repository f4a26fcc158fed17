"""Provider limits held across sender processes: alerts_reserve_send_slots() hands out send slots
under the channel's row lock, so runners side by side (cron on several hosts, several watchers)
together stay within Telegram's 30 messages/s per bot and one message a second per chat.

The SQL function alone (two connections reserving at once), the Python side that reserves a
whole group of waiting messages in one round trip, and real `runner.py --phase c` processes
against a fake Bot API on 127.0.0.1 that records when each request arrived."""

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections import defaultdict

import psycopg
import pytest

from alerts.send_slots import DatabaseSlots
from alerts.senders.base import LocalSender
from alerts.senders.channels import ChannelRouter, ChannelUnavailable, TurnNotYet
from alerts.senders.limits import DEFAULT_LIMITS, ChannelLimits
from alerts.senders.pacing import SPACING_MARGIN, Slot, SlotsUnavailable
from tests.conftest import ROOT
from tests.fakes.telegram_api import FakeTelegramApi
from tests.test_concurrent_sending import BOT_TOKEN, busiest_second, fan_out, statuses, telegram_env

RESERVE = "SELECT slot, slot_at, wait_seconds, reserved FROM alerts_reserve_send_slots(%s, %s, %s, %s) ORDER BY slot"
SECOND = 1e-6  # slot_at is kept to the microsecond


def reserve(conn: psycopg.Connection, destinations: list[str], per_second: float | None,
            interval: float = 0.0, channel: str = "telegram") -> list[tuple]:
    return conn.execute(RESERVE, [channel, destinations, per_second, interval]).fetchall()


def gaps(times: list) -> list[float]:
    ordered = sorted(times)
    return [(later - earlier).total_seconds() if hasattr(later, "tzinfo") else later - earlier
            for earlier, later in zip(ordered, ordered[1:], strict=False)]


def test_two_connections_reserving_at_once_never_get_slots_closer_than_the_interval(db_url):
    """Each caller's slots come out of one timeline: the channel's slots at least (1 + margin)/rate
    apart, one destination's at least its interval (+ margin) apart, whoever reserved them."""
    rate, interval, rounds = 200.0, 0.05, 40
    chats = [f"{700000 + n}" for n in range(12)]
    barrier = threading.Barrier(2)
    found: dict[int, list[tuple]] = {}

    def caller(number: int) -> None:
        rows = []
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            for turn in range(rounds):
                group = [chats[(turn * 5 + number * 7 + k) % len(chats)] for k in range(5)]
                rows += [(number, group[slot - 1], *rest) for slot, *rest in reserve(conn, group, rate, interval)]
        found[number] = rows

    threads = [threading.Thread(target=caller, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = found[0] + found[1]
    reserved = [(who, chat, at) for who, chat, at, _, ok in rows if ok]
    assert len(rows) == 2 * rounds * 5 and {who for who, _, _ in reserved} == {0, 1}
    assert min(gaps([at for _, _, at in reserved])) >= (1 + SPACING_MARGIN) / rate - SECOND
    by_chat = defaultdict(list)
    for _, chat, at in reserved:
        by_chat[chat].append(at)
    closest = min(min(gaps(times)) for times in by_chat.values() if len(times) > 1)
    assert closest >= interval * (1 + SPACING_MARGIN) - SECOND
    # a message refused a slot (its chat still within its interval) is told to come back later
    assert all(wait > 0 for *_, wait, ok in rows if not ok)


def test_one_group_one_round_trip_and_a_busy_chat_uses_up_no_slot(conn):
    rows = reserve(conn, ["100001", "100002", "100001", "100003"], 30.0, 1.0)
    assert [ok for *_, ok in rows] == [True, True, False, True]
    spacing = (1 + SPACING_MARGIN) / 30
    assert [round(gap, 6) for gap in gaps([at for _, at, _, ok in rows if ok])] == [round(spacing, 6)] * 2
    assert rows[0][2] < 0.05, "the first slot is now"
    # ask again once the channel's slots, booked two ahead now, reach the end of the chat's second
    assert (rows[2][1] - rows[0][1]).total_seconds() == pytest.approx(1.04 - 2 * spacing, abs=SECOND)
    assert 0 < rows[2][2] <= 1.04 - 2 * spacing
    assert all(wait >= 0 for _, _, wait, _ in rows)


def test_destinations_are_kept_as_sha256_and_forgotten_once_their_interval_is_over(conn):
    reserve(conn, ["100001"], 30.0, 0.1)
    kept = conn.execute("SELECT destination_sha256 FROM alerts_send_pacing_destinations").fetchall()
    assert kept == [(hashlib.sha256(b"100001").digest(),)]
    conn.execute("SELECT pg_sleep(0.15)")
    reserve(conn, ["100002"], 30.0, 0.1)
    kept = conn.execute("SELECT destination_sha256 FROM alerts_send_pacing_destinations").fetchall()
    assert kept == [(hashlib.sha256(b"100002").digest(),)]
    reserve(conn, ["a@example.com"], 30.0, channel="email")  # no interval: nothing kept per destination
    assert conn.execute("SELECT count(*) FROM alerts_send_pacing_destinations").fetchone() == (1,)


def test_slots_are_booked_at_most_5_seconds_ahead(conn):
    rows = reserve(conn, [f"+1555000000{n}" for n in range(8)], 1.0, channel="sms")
    assert [ok for *_, ok in rows] == [True] * 5 + [False] * 3  # 0, 1.04, ..., 4.16 s; 5.2 s is too far
    assert rows[5][2] == pytest.approx(5.2 - 5.0, abs=0.01)


@pytest.mark.parametrize(("destinations", "per_second", "interval"), [
    (["1"], 0.0, 0.0), (["1"], -1.0, 0.0), (["1"], float("nan"), 0.0), (["1"], float("inf"), 0.0),
    (["1"], 30.0, -1.0), (["1", None], 30.0, 0.0), (None, 30.0, 0.0),
])
def test_bad_arguments_are_refused(conn, destinations, per_second, interval):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        reserve(conn, destinations, per_second, interval)


@pytest.mark.parametrize(("statement", "error"), [
    ("INSERT INTO alerts_send_pacing VALUES (' ', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO alerts_send_pacing VALUES ('sms', 'infinity')", psycopg.errors.CheckViolation),
    ("INSERT INTO alerts_send_pacing_destinations VALUES ('telegram', 'short', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO alerts_send_pacing_destinations VALUES ('telegram', sha256('x'), '-infinity')",
     psycopg.errors.CheckViolation),
    ("INSERT INTO alerts_send_pacing_destinations VALUES ('nowhere', sha256('x'), now())",
     psycopg.errors.ForeignKeyViolation),
])
def test_illegal_pacing_rows_are_refused_by_the_tables(conn, statement, error):
    conn.execute("INSERT INTO alerts_send_pacing VALUES ('telegram', now())")
    with pytest.raises(error):
        conn.execute(statement)


def test_waiting_threads_reserve_together_in_few_round_trips(db_url):
    slots = DatabaseSlots(db_url)
    barrier = threading.Barrier(20)
    taken: list[float] = []

    def one(number: int) -> None:
        barrier.wait()
        taken.append(slots.reserve("telegram", f"{800000 + number}", 30.0, 1.0).at)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots.close()
    assert len(taken) == 20 and slots.round_trips < 20, slots.round_trips
    # counted from when each answer arrived: a group's answer read late makes its slots late, never early
    assert min(gaps(taken)) >= (1 + SPACING_MARGIN) / 30 - 0.01


class RecordedSlots:
    """A SlotSource that notes every reservation and answers as told."""

    def __init__(self, answer: Slot | None = None) -> None:
        self.asked: list[tuple] = []
        self.answer = answer

    def reserve(self, channel: str, destination: str, per_second: float | None, interval: float) -> Slot:
        self.asked.append((channel, destination, per_second, interval))
        if self.answer is None:
            raise SlotsUnavailable(channel, "connection refused")
        return self.answer


def router_with(slots: RecordedSlots) -> ChannelRouter:
    router = ChannelRouter({"email": LocalSender(), "telegram": LocalSender()}, clock=lambda: 100.0,
                           limits={"email": ChannelLimits(20), "telegram": DEFAULT_LIMITS["telegram"]})
    router.share_send_slots(slots)
    return router


def test_a_paced_channel_takes_its_turn_from_the_shared_slots_and_an_unpaced_one_makes_no_round_trip():
    slots = RecordedSlots(Slot(at=100.5, reserved=True))
    router = router_with(slots)
    assert router.turn("email", "a@example.com") == 100.0
    assert router.turn("telegram", "100001") == 100.5
    assert router.turn("telegram", "100001") == 100.5, "the chat's interval is the shared slots' to keep"
    assert slots.asked == [("telegram", "100001", 30.0, 1.0)] * 2
    router.share_send_slots(None)  # the run is over: the process paces alone again
    assert router.turn("telegram", "100002") == 100.0 and len(slots.asked) == 2


def test_a_busy_chat_is_asked_again_later_and_unreachable_slots_hold_the_channel():
    router = router_with(RecordedSlots(Slot(at=101.04, reserved=False)))
    with pytest.raises(TurnNotYet) as later:
        router.turn("telegram", "100001")
    assert later.value.at == 101.04
    router = router_with(RecordedSlots(None))
    with pytest.raises(ChannelUnavailable, match="could not reserve telegram send slots"):
        router.turn("telegram", "100001")
    assert router.held_for("telegram") > 10 and "telegram" in router.provider_holds
    assert router.available_channels() == frozenset({"email"})


def start_runners(db_url: str, count: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    full_env.update(env, DATABASE_URL=db_url)
    return [subprocess.Popen([sys.executable, str(ROOT / "runner.py"), "--phase", "c"], env=full_env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]


@pytest.mark.parametrize(("runners", "rate", "users"), [(2, 10, 50), (3, 10, 50), (2, None, 120)],
                         ids=["2-runners-10-per-s", "3-runners-10-per-s", "2-runners-default-30-per-s"])
def test_runners_side_by_side_stay_within_telegrams_limits_together(conn, db_url, runners, rate, users):
    """Each runner alone would keep the rate; side by side they share it. Claims of 10 make every
    runner take part; four users share one chat and three another, so those chats get several."""
    total = fan_out(conn, users=users, events=1, channel="telegram")
    conn.execute("UPDATE users u SET telegram_chat_id = CASE WHEN r.n <= 4 THEN '777001' ELSE '777002' END"
                 "  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) r WHERE u.id = r.id AND r.n <= 7")
    limit = rate or 30
    with FakeTelegramApi(BOT_TOKEN) as api:
        api.delay = 0.05
        env = {**telegram_env(api), "ALERTS_BATCH_SIZE": "10"}
        if rate:
            env["ALERTS_RATE_LIMIT_TELEGRAM_PER_SECOND"] = str(rate)
        processes = start_runners(db_url, runners, env)
        outputs = [process.communicate(timeout=60) for process in processes]
        requests = list(api.requests)
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    sent_by = [json.loads(stdout.strip().splitlines()[-1])["sent"] for stdout, _ in outputs]
    by_chat = defaultdict(list)
    for request in requests:
        by_chat[str(request.json()["chat_id"])].append(request.at)

    assert all(sent > 0 for sent in sent_by), f"not every runner sent: {sent_by}"
    assert sum(sent_by) == total == len(requests), (sent_by, total, len(requests))
    assert statuses(conn) == {"sent": total}
    assert conn.execute("SELECT max(attempts) FROM user_alert_deliveries").fetchone() == (1,)
    assert len(by_chat["777001"]) == 4 and len(by_chat["777002"]) == 3
    # a connection's first request also waited for its handshake and the fake's new thread, not for a
    # slot (as in tests/test_concurrent_sending.py): the pace is read from the others
    paced = [r.at for r in requests if not r.first_on_connection]
    busiest = busiest_second(paced)
    assert busiest <= limit, f"{busiest} requests within one second from {runners} runners, {limit}/s allowed"
    assert busiest >= 0.9 * limit, f"only {busiest} requests in the busiest second together, {limit}/s allowed"
    closest = min(min(gaps(chat_times)) for chat_times in by_chat.values() if len(chat_times) > 1)
    assert closest >= 1.0, f"two messages to one chat {closest:.3f}s apart"
