"""Guards on Phase C's per-delivery shortcuts: the render cache never mixes rows (a warm render
equals a cold one), an outbox line is one JSON line that gives back every field of its message
with a correct UTC timestamp, and unsent rows are released."""

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from alerts.delivery import (
    DELIVERIES,
    BatchOutcomes,
    Database,
    DeliveryCounts,
    RunGuard,
    deliver,
    send_and_record,
    send_batch,
)
from alerts.message import EventFacts
from alerts.render import OutgoingMessage, clear_cache, render
from alerts.senders.base import LocalSender, SendResult
from alerts.senders.channels import ChannelUnavailable
from alerts.senders.file_outbox import FileOutboxSender, outbox_line
from tests import seed
from tests.fakes import HOSTILE_HEADLINE, outgoing


def _claimed_row(delivery_id: int, user_id: int, event_id: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "delivery_id": delivery_id, "user_id": user_id, "channel": "email",
        "destination": f"user{user_id}@example.com", "attempts": 1, "alert_event_id": event_id,
        "alert_type": "HIGH_IMPACT_EVENT", "severity": 4, "scope_region": "Europe", "scope_assets": ["gas"],
        "headline": f"Outage {event_id}", "body": f"Body of event {event_id}.",
    }
    row.update(overrides)
    return row


def _rendered_cold(row: dict[str, object]) -> tuple[str | None, str, str | None]:
    """(subject, body, html) of this row rendered with the renderer's cache emptied first."""
    clear_cache()
    message = render(row)
    return message.subject, message.body, message.html


def test_render_cache_never_mixes_rows():
    rows = [_claimed_row(100 + n, user_id=n % 5, event_id=n % 3, attempts=1 + n % 2) for n in range(30)]
    rows.append(_claimed_row(200, user_id=9, event_id=1, headline="Outage 1, updated", scope_assets=None))
    rows.append(_claimed_row(201, user_id=9, event_id=1, severity=5))
    rows.append(_claimed_row(202, user_id=9, event_id=1, headline="Outage 1, renamed"))  # only the headline differs
    # each of these differs from the row before it on the same channel in one input of its texts only
    happened = datetime(2026, 11, 30, 6, 12, tzinfo=UTC)
    rows.append(_claimed_row(203, user_id=9, event_id=1, headline="Outage 1, renamed again"))
    rows.append(_claimed_row(204, user_id=9, event_id=1, headline="Outage 1, renamed again",
                             facts=EventFacts(occurred_at=happened, category="shipping")))
    rows.append(_claimed_row(205, user_id=9, event_id=1, headline="Outage 1, renamed again",
                             facts=EventFacts(occurred_at=happened, category="shipping"), event_created_at=happened))
    rows.append(_claimed_row(206, user_id=9, event_id=1, headline="Outage 1, renamed again",
                             facts=EventFacts(occurred_at=happened, category="shipping"), event_created_at=happened,
                             body="Another body."))
    rows += [_claimed_row(300 + n, user_id=n, event_id=n % 2, channel=channel, destination=destination)
             for n, (channel, destination) in enumerate([("telegram", "1001"), ("sms", "+15550000001")] * 3)]
    messages = [render(row) for row in rows]  # all through the warm cache first
    for row, message in zip(rows, messages, strict=True):
        assert (message.delivery_id, message.user_id, message.destination, message.attempt, message.alert_event_id) \
            == (row["delivery_id"], row["user_id"], row["destination"], row["attempts"], row["alert_event_id"])
        assert (message.subject, message.body, message.html) == _rendered_cold(row)
        assert (message.headline, message.event_body, message.severity) == (row["headline"], row["body"],
                                                                            row["severity"])
        if message.channel == "email":
            assert f"Reference: delivery {row['delivery_id']}\n" in message.body


AWKWARD = 'quote " backslash \\ slash / tab \t nl \n cr \r nul \x00 bell \x07 \x1f é ✓ 🚨 \u2028 \u2029 \x7f'


@pytest.mark.parametrize("message", [
    outgoing(),
    outgoing(subject=HOSTILE_HEADLINE, body=AWKWARD, destination=AWKWARD, channel="telegram"),
    outgoing(subject="", body="", destination="", delivery_id=0, user_id=0, alert_event_id=0, attempt=0),
    outgoing(kind="digest", delivery_id=9, alert_event_id=0, member_ids=(4, 5, 6), body=AWKWARD),
    outgoing(subject=AWKWARD, body="text", html=f"<p>{AWKWARD}</p>"),
    outgoing(kind="digest", delivery_id=9, member_ids=()),
    outgoing(delivery_id=2**62, user_id=2**40),
], ids=["plain", "awkward", "empty", "digest", "email-html", "empty-digest", "big-ids"])
@pytest.mark.parametrize("written_at", [datetime(2026, 11, 30, 6, 9, 17, 56850, tzinfo=UTC),
                                        datetime(2026, 11, 30, 6, 9, 17, tzinfo=UTC)], ids=["us", "whole-second"])
def test_an_outbox_line_is_one_json_line_that_gives_back_the_message(message, written_at):
    line = outbox_line(message, written_at)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # U+2028, U+2029 and controls stay escaped
    record = json.loads(line)
    assert datetime.fromisoformat(record["written_at"]) == written_at
    assert (record["kind"], record["channel"], record["destination"], record["subject"], record["body"],
            record["user_id"], record["alert_event_id"], record["attempt"]) == (
        message.kind, message.channel, message.destination, message.subject, message.body,
        message.user_id, message.alert_event_id, message.attempt)
    assert record.get("html", "absent") == (message.html if message.html is not None else "absent")
    assert record.get("parse_mode") == ("HTML" if message.channel == "telegram" else None)
    if message.kind == "digest":
        assert (record["delivery_id"], record["digest_id"], record["delivery_ids"]) == (
            None, message.delivery_id, list(message.member_ids))
    else:
        assert record["delivery_id"] == message.delivery_id and "digest_id" not in record


class _EmailOnly(LocalSender):
    """Sends email, raises ChannelUnavailable for anything else (as a router does for a held channel)."""

    name = "email-only"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.flushed = 0

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.channel != "email":
            raise ChannelUnavailable(message.channel, "held")
        self.sent.append(message)
        return SendResult.sent(f"id-{message.delivery_id}")

    def flush(self) -> None:
        self.flushed += 1


def test_send_batch_leaves_only_unserved_rows_unsent():
    rows = [_claimed_row(1, 1, 1), _claimed_row(2, 2, 1, channel="sms", destination="+15550000002"),
            _claimed_row(3, 3, 1, destination="not an address"), _claimed_row(4, 4, 1),
            _claimed_row(5, 5, 1, channel="sms", destination="+15550000005")]
    outcomes = BatchOutcomes(unsent={int(r["delivery_id"]): 70 + int(r["delivery_id"]) for r in rows})
    sender = _EmailOnly()
    send_batch(DELIVERIES, sender, rows, outcomes, DeliveryCounts())
    assert outcomes.unsent == {2: 72, 5: 75} and outcomes.in_flight == {}
    assert outcomes.sent == [(1, 71, "id-1"), (4, 74, "id-4")]
    assert [row_id for row_id, _, _ in outcomes.skipped] == [3]
    assert [m.delivery_id for m in sender.sent] == [1, 4] and sender.flushed == 1


def _fan_out(conn: psycopg.Connection, users: int, events: int) -> int:
    seed.population(conn, users=users, events=events, channels=("email", "sms"))
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    row = conn.execute("SELECT count(*) FROM user_alert_deliveries").fetchone()
    assert row is not None
    return int(row[0])


def test_outbox_lines_match_their_rows_and_unserved_rows_are_released(conn, db_url, tmp_path: Path):
    total = _fan_out(conn, users=12, events=3)
    outbox = tmp_path / "outbox.jsonl"
    sender = FileOutboxSender(outbox)

    class EmailOnlyFile(_EmailOnly):
        def send(self, message: OutgoingMessage) -> SendResult:
            if message.channel != "email":
                raise ChannelUnavailable(message.channel, "held")
            return sender.send(message)

        def flush(self) -> None:
            sender.flush()

    class EmailRouter(EmailOnlyFile):
        def available_channels(self) -> frozenset[str]:
            return frozenset({"email"})

    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as worker:
        # several batches, email only
        counts = deliver(Database(db_url, worker), EmailRouter(), batch_size=5, max_send=10_000)
        left = total - counts.sent  # the sms rows: one batch claims them all and releases them
        held = deliver(Database(db_url, worker), EmailOnlyFile(), batch_size=left, max_send=left)
    sender.close()

    expected = {row[0]: row[1:] for row in conn.execute(
        "SELECT d.id, d.user_id, u.email, d.attempts, e.id, e.headline FROM user_alert_deliveries d"
        "  JOIN users u ON u.id = d.user_id JOIN alert_events e ON e.id = d.alert_event_id"
        " WHERE d.channel = 'email'")}
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert sorted(line["delivery_id"] for line in lines) == sorted(expected)
    for line in lines:
        user_id, email, attempts, event_id, headline = expected[line["delivery_id"]]
        assert (line["user_id"], line["destination"], line["attempt"], line["alert_event_id"]) \
            == (user_id, email, attempts, event_id)
        assert line["subject"].endswith(headline) and line["body"].startswith(headline)
        assert datetime.fromisoformat(line["written_at"]).utcoffset() == timedelta(0)

    assert counts.sent == len(expected) and counts.batches > 3 and counts.released == 0
    assert held.claimed == held.released == total - len(expected) > 0 and held.sent == 0
    assert conn.execute("SELECT channel, status, attempts, count(*) FROM user_alert_deliveries"
                        " GROUP BY 1, 2, 3 ORDER BY 1").fetchall() == [
        ("email", "sent", 1, len(expected)), ("sms", "queued", 0, total - len(expected))]


class _SlowSender(_EmailOnly):
    """Takes 30 ms a message (a provider's round trip) and notes, at each message, how many of
    the batch's rows the database already shows as sent."""

    def __init__(self, db_url: str) -> None:
        super().__init__()
        self.observer = psycopg.connect(db_url, autocommit=True)
        self.recorded_at_each_send: list[int] = []

    def available_channels(self) -> frozenset[str]:
        return frozenset({"email"})

    def send(self, message: OutgoingMessage) -> SendResult:
        row = self.observer.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone()
        self.recorded_at_each_send.append(int(row[0]) if row else -1)
        time.sleep(0.03)
        return super().send(message)


@pytest.mark.parametrize("record_interval", [0.2, 3600.0])
def test_a_slow_senders_outcomes_are_recorded_while_its_batch_is_sent(conn, db_url, record_interval):
    """A crash mid-batch repeats only what was sent since the outcomes were last recorded: with a
    slow provider they are recorded every record_interval, not only when the whole batch is done."""
    total = _fan_out(conn, users=20, events=1) // 2  # the email rows; sms stays queued
    sender = _SlowSender(db_url)
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as worker:
            counts = deliver(Database(db_url, worker), sender, batch_size=total, max_send=total,
                             record_interval=record_interval)
    finally:
        sender.observer.close()
    assert counts.batches == 1 and counts.sent == total == len(sender.recorded_at_each_send)
    recorded_mid_batch = sender.recorded_at_each_send[-1]
    if record_interval < 1:  # 20 sends x 30 ms: recorded about every 7 sends
        assert 0 < recorded_mid_batch < total, sender.recorded_at_each_send
    else:
        assert recorded_mid_batch == 0, sender.recorded_at_each_send
    assert conn.execute("SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'").fetchone() == (total,)


def _outbox_ids(outbox: Path) -> list[int]:
    return sorted(json.loads(line)["delivery_id"] for line in outbox.read_text().splitlines())


def _sent_ids(conn: psycopg.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM user_alert_deliveries WHERE status = 'sent' ORDER BY id")]


def test_every_row_recorded_sent_has_its_outbox_line_before_the_sender_closes(conn, db_url, tmp_path: Path):
    """The outbox holds a batch's lines until flush(); the run flushes before it records a row sent."""
    _fan_out(conn, users=12, events=2)
    outbox = tmp_path / "outbox.jsonl"
    sender = FileOutboxSender(outbox)
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as worker:
            counts = deliver(Database(db_url, worker), sender, batch_size=7, max_send=10_000)
        assert counts.sent == len(_sent_ids(conn)) > 7
        assert _outbox_ids(outbox) == _sent_ids(conn)  # read before close(): flush() wrote them
    finally:
        sender.close()


def test_a_batch_stopped_by_an_error_writes_its_lines_before_it_records_them_sent(conn, db_url, tmp_path: Path):
    """A batch that ends on an exception (here a stop at once, mid-batch) still records what went out,
    and each of those rows has its line in the outbox first."""
    _fan_out(conn, users=12, events=1)
    outbox = tmp_path / "outbox.jsonl"
    sender = FileOutboxSender(outbox)
    rendered = []

    def render_until_interrupted(row: dict) -> OutgoingMessage:
        if len(rendered) == 5:
            raise KeyboardInterrupt
        rendered.append(row)
        return DELIVERIES.render(row)

    queue = replace(DELIVERIES, render=render_until_interrupted)
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as worker, \
                pytest.raises(KeyboardInterrupt):
            send_and_record(Database(db_url, worker), queue, sender,
                            Database(db_url, worker).rows(queue.claim, [100, ["email"]]), DeliveryCounts(), 3600.0,
                            RunGuard())
        assert len(_sent_ids(conn)) == 5
        assert _outbox_ids(outbox) == _sent_ids(conn)  # read before close()
    finally:
        sender.close()
