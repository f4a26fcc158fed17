"""Hot reads against years of history: Phase A with nothing new, and a spike message's facts
(alert_message_facts: its reading and the one before), on a population of two years of
twice-daily readings (300 regions, 50 assets at `large`) and millions of events. Both must stay
flat in the history's size: the targets are absolute (Phase A <= 200 ms, facts <= 1 ms a
message), each beside a bare index look-up of the same rows for scale."""

import statistics
import time

import psycopg

from alerts.counts import while_more
from bench.cases import Context, settle
from bench.report import Result, ratio

SAMPLES = 7
SIZES = {  # (regions, assets, days of readings, events)
    "tiny": (3, 2, 30, 2_000),
    "small": (300, 50, 730, 500_000),
    "medium": (300, 50, 730, 2_000_000),
    "large": (300, 50, 730, 5_000_000),
}
FACT_EVENTS = 50  # spike alert events whose messages' facts are read at once, as a claimed batch does


def seed_history(conn: psycopg.Connection, regions: int, assets: int, days: int, events: int) -> None:
    """Readings twice a day for `days` days per region (risk_indices) and per asset (asset_risk),
    and `events` events spread over the same days, none of them new for Phase A."""
    conn.execute("INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at)"
                 " SELECT 'Region ' || r, 7, 30 + (r * 7 + k * 13) %% 40, 'flat',"
                 "        now() - make_interval(hours => 12 * k)"
                 "   FROM generate_series(1, %s) r, generate_series(1, %s) k", [regions, 2 * days])
    conn.execute("INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at)"
                 " SELECT 'asset' || a, 'Region ' || (a %% %s + 1), 7, 30 + (a * 11 + k * 5) %% 40, 'flat',"
                 "        now() - make_interval(hours => 12 * k)"
                 "   FROM generate_series(1, %s) a, generate_series(1, %s) k", [regions, assets, 2 * days])
    conn.execute("INSERT INTO events (title, region, category, severity_score, inserted_at)"
                 " SELECT 'Event ' || g, 'Region ' || (g %% %s + 1), 'supply', 1 + g %% 3,"
                 "        now() - interval '1 day' - make_interval(secs => g %% (86400 * %s))"
                 "   FROM generate_series(1, %s) g", [regions, days, events])


def spike_batch(conn: psycopg.Connection, regions: int) -> tuple[list[int], list[int]]:
    """FACT_EVENTS spike alert events on the newest readings, one delivery each, claimed: the
    (alert event ids, claim tokens) a Phase C batch hands to alert_message_facts()."""
    conn.execute("INSERT INTO users (email, email_verified) VALUES ('history@example.com', true)")
    conn.execute(
        "INSERT INTO alert_events (alert_type, scope_region, severity, headline, body, event_fingerprint, risk_score,"
        "                          fired_on_rise, fanout_completed_at)"
        " SELECT 'REGIONAL_RISK_SPIKE', 'Region ' || (g %% %s + 1), 4, 'Spike ' || g, 'Spike', 'bench-spike:' || g,"
        "        80, true, now() FROM generate_series(1, %s) g", [regions, FACT_EVENTS])
    conn.execute("INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
                 " SELECT e.id, u.id, 'email', 'instant' FROM alert_events e, users u"
                 "  WHERE e.event_fingerprint LIKE 'bench-spike:%%' AND u.email = 'history@example.com'")
    rows = conn.execute("SELECT alert_event_id, claim_token FROM claim_deliveries(%s)", [FACT_EVENTS]).fetchall()
    return [row[0] for row in rows], [row[1] for row in rows]


def median_seconds(conn: psycopg.Connection, sql: str, params: list | None = None) -> tuple[float, list[float]]:
    samples = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples


def history_cases(ctx: Context) -> list[Result]:
    regions, assets, days, events = SIZES[ctx.scale.name]
    conn = ctx.conn
    seed_history(conn, regions, assets, days, events)
    settle(conn, analyze=True)
    while_more(lambda: conn.execute("SELECT alerts_phase_a()").fetchone()[0])  # type: ignore[index]
    settle(conn, analyze=True)
    sizes = {"regions": regions, "assets": assets, "days": days, "events": events,
             "risk_rows": 2 * days * regions, "asset_rows": 2 * days * assets}

    phase_a, phase_a_samples = median_seconds(conn, "SELECT alerts_phase_a()")
    newest, newest_samples = median_seconds(  # the newest reading of every region, by the index
        conn, "SELECT r.region, (SELECT max(calculated_at) FROM risk_indices i WHERE btrim(i.region) = r.region"
              "   AND i.window_days = 7)"
              "  FROM (SELECT DISTINCT 'Region ' || g AS region FROM generate_series(1, %s) g) r",
        [regions])
    ids, tokens = spike_batch(conn, regions)
    facts, facts_samples = median_seconds(conn, "SELECT * FROM alert_message_facts(%s, %s)", [ids, tokens])
    lookups, lookup_samples = median_seconds(  # a reading and the one before, per message, by the index
        conn, "SELECT (SELECT array_agg(calculated_at) FROM (SELECT calculated_at FROM risk_indices i"
              "  WHERE btrim(i.region) = e.scope_region AND i.window_days = 7 ORDER BY calculated_at DESC, id DESC"
              "  LIMIT 2) two) FROM alert_events e WHERE e.id = ANY(%s)", [ids])
    per_message = facts / max(len(ids), 1)
    return [
        ctx.result("history_reads", "phase A, nothing new", 1, phase_a, "<= 200 ms", phase_a <= 0.2,
                   baseline_seconds=newest, ratio_to_baseline=ratio(phase_a, newest), samples=phase_a_samples,
                   baseline_samples=newest_samples, **sizes),
        ctx.result("history_reads", "message facts, per batch", len(ids), facts, "<= 1 ms per message",
                   per_message <= 0.001, baseline_seconds=lookups, ratio_to_baseline=ratio(facts, lookups),
                   ms_per_message=round(per_message * 1000, 3), samples=facts_samples,
                   baseline_samples=lookup_samples, **sizes),
    ]
