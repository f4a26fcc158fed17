"""Property-based tests of Phase A and Phase B over generated host data, against the real server.

Each property runs in one deployed database (the `conn` fixture) that is emptied with TRUNCATE
between Hypothesis examples. The expected outcome comes from a small pure-Python reference model
of CONTRACT.md ("Alert types Phase A creates", "Who gets a delivery") plus the choices stated in
the header comments of db/functions/phase_a_alert_events.sql and phase_b_fanout.sql:

* Phase A: a row is invalid when its region (or asset) is NULL or blank after trimming spaces,
  or its severity is NULL / outside 1-5, or its risk score is NULL / NaN / outside 0-100; the newest
  reading of a region (or region and asset) decides, and an invalid newest reading means no reading
  (the older row behind it does not fire); the rise rule compares with the previous valid reading of
  the region (window 7, any age); a region or asset is escaped in the fingerprint ('\\' and ':'
  get a backslash); a spike records its score and whether its rise rule held.
* Phase B: a pref's threshold is a risk score: a spike matches when its risk_score is at least the
  threshold or it fired on its rise, and a spike without a risk_score (stored before the column
  existed) matches any threshold; HIGH_IMPACT_EVENT ignores it. Several matching prefs give one
  delivery per channel, instant when any matching pref
  (or the plan default) says instant; a delivery_mode other than instant/digest counts as unset;
  a daily cap counts today's (UTC) non-skipped deliveries of the user and channel, and the most
  severe events (then the lowest id) win; a delivery_config value of the wrong JSON type counts
  as missing; a numeric max_per_day is clamped to 0..2^31-1 and rounded half away from zero.

Every property is first checked directly (a failure names the rule), then against the model.
"""

import json
import random
import re
import string
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ALL_TYPES = ("HIGH_IMPACT_EVENT", "REGIONAL_RISK_SPIKE", "ASSET_RISK_SPIKE")
SPIKE_TYPES = ("REGIONAL_RISK_SPIKE", "ASSET_RISK_SPIKE")
CHANNELS = ("email", "telegram", "sms")
ENABLED_BY_DEFAULT = {"email": True, "telegram": True, "sms": False}
PLAN_CODES = ("free", "personal", "trader", "pro", "enterprise")
INT_MAX = 2**31 - 1

# Defaults of alerts_config (the tests never change them).
HIGH_IMPACT_MIN_SEVERITY = 4
HIGH_IMPACT_LOOKBACK = timedelta(hours=24)
SPIKE_WINDOW_DAYS = 7
SPIKE_MIN_SCORE = Decimal(70)
SPIKE_RISE_FACTOR = Decimal("1.2")
SPIKE_MAX_AGE = timedelta(days=2)
FANOUT_LOOKBACK = timedelta(days=7)

RESET_TABLES = ("users", "user_plans", "plan_settings", "user_alert_prefs", "events", "risk_indices", "asset_risk",
                "alert_events", "user_alert_deliveries", "alert_digests", "alerts_runs")

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def reset(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE " + ", ".join(RESET_TABLES) + " RESTART IDENTITY CASCADE")


def call(conn: psycopg.Connection, function: str) -> dict:
    row = conn.execute(f"SELECT {function}()").fetchone()
    assert row is not None
    return row[0]


def db_now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def trimmed(value: str | None) -> str | None:
    """btrim(value) with NULL for blank: PostgreSQL's btrim strips spaces only, not tabs or NBSP."""
    if value is None:
        return None
    return value.strip(" ") or None


def utc_day(ts: datetime) -> str:
    return ts.astimezone(UTC).date().isoformat()


# --------------------------------------------------------------------------------------------
# Generated text, hostile on purpose
# --------------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", "   ", "\t", "\u00a0", "line\nbreak", "O'Brien \"quoted\"", "<b>bold</b><script>alert(1)</script>",
    "'); DROP TABLE alert_events; --", "%s %I %L $1 {}", "back\\slash", "🔥 Ωmega 東京", "Zürich", "a:b:c",
]
COMMON_REGIONS = ["Europe", " Europe ", "Asia", "Middle East"]
_PRINTABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_LONG_ALPHABET = string.ascii_letters + string.digits + "'\"<>;%:éß東京🔥"


def long_text(min_len: int, max_len: int, alphabet: str = _LONG_ALPHABET) -> st.SearchStrategy[str]:
    """Long, barely compressible text, built from a seed so that Hypothesis shrinks it cheaply."""
    return st.builds(lambda seed, n: "".join(random.Random(seed).choices(alphabet, k=n)),
                     st.integers(0, 2**32 - 1), st.integers(min_len, max_len))


def free_text(long_max: int) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(HOSTILE_TEXT), st.text(_PRINTABLE, max_size=12),
                     long_text(long_max // 2, long_max))


def region_text(long_max: int) -> st.SearchStrategy[str | None]:
    return st.one_of(st.sampled_from(COMMON_REGIONS), st.sampled_from(COMMON_REGIONS), free_text(long_max))


# Spike regions and assets end up in event_fingerprint, which has a btree UNIQUE index with a
# size limit (~2,700 bytes): Phase A counts a spike row with a region over 200 or an asset over
# 100 characters as invalid. The generators go well past both limits.
REGION_MAX_CHARS = 200
ASSET_MAX_CHARS = 100
SPIKE_REGION_MAX_CHARS = 3000
SPIKE_ASSET_MAX_CHARS = 3000
# Assets are lower-cased by PostgreSQL: ASCII and caseless symbols keep lower() the same in both.
ASSET_TEXT = [None, "", "  ", "oil", "gas", "fx", "freight", " OIL ", "Gas", "coal", "o'il", "<i>fx</i>", "🛢", "1;--"]
asset_text = st.one_of(
    st.sampled_from(ASSET_TEXT), st.sampled_from(["oil", "gas", "fx", "freight"]),
    st.text(string.ascii_letters + " '\";<>%", max_size=8),
    long_text(SPIKE_ASSET_MAX_CHARS // 2, SPIKE_ASSET_MAX_CHARS, string.ascii_letters + string.digits + "'<>;%"),
)
severities = st.sampled_from([None, -1, 0, 1, 2, 3, 4, 5, 5, 4, 6, 100, -(2**31), INT_MAX])
scores = st.one_of(
    st.sampled_from([None, Decimal(0), Decimal(100), Decimal("69.99"), Decimal(70), Decimal(80), Decimal("89.99"),
                     Decimal(90), Decimal("100.0001"), Decimal("-0.0001"), Decimal(-5), Decimal(150),
                     Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1e30")]),
    st.decimals(min_value=0, max_value=100, places=2),
)
window_days = st.sampled_from([7, 7, 7, None, 30, 0])
# Offsets from "now" in hours (negative: in the future), at least one hour away from the
# 24 h (events) and 48 h (spikes) boundaries so that the seconds between seeding and the run
# never matter. Equal offsets give equal timestamps, which exercises the id tie-break.
event_ages = st.sampled_from([-48, -1, 0, 1, 12, 23, 25, 30, 24 * 30])
spike_ages = st.sampled_from([-30, -1, 0, 1, 5, 20, 30, 47, 49, 72, 24 * 10])


@dataclass(frozen=True)
class EventRow:
    title: str | None
    region: str | None
    category: str | None
    severity: int | None
    age_hours: int


@dataclass(frozen=True)
class RiskRow:
    region: str | None
    window_days: int | None
    score: Decimal | None
    age_hours: int


@dataclass(frozen=True)
class AssetRow:
    asset: str | None
    region: str | None
    window_days: int | None
    score: Decimal | None
    age_hours: int


# Each table mixes ordinary rows (valid, recent, often over the thresholds, few regions so that
# readings of one region compete) with hostile ones.
ordinary_regions = st.sampled_from(["Europe", "Europe", " Europe ", "Asia", "O'Brien \"quoted\" <b>🔥</b>",
                                    "Europe:oil", "back\\slash:"])
ordinary_scores = st.one_of(st.sampled_from([Decimal(10), Decimal(50), Decimal(70), Decimal(80), Decimal(90),
                                             Decimal(100)]), st.decimals(min_value=0, max_value=100, places=1))
recent_event_ages = st.sampled_from([-1, 0, 1, 12, 25])
recent_spike_ages = st.sampled_from([0, 1, 5, 20, 30, 72])
event_rows = st.one_of(
    st.builds(EventRow, title=free_text(300), region=ordinary_regions, category=st.just("supply"),
              severity=st.sampled_from([3, 4, 5]), age_hours=recent_event_ages),
    st.builds(EventRow, title=free_text(6000), region=free_text(6000), category=free_text(3000),  # hostile text
              severity=st.sampled_from([4, 5]), age_hours=recent_event_ages),
    st.builds(EventRow, title=free_text(6000), region=region_text(6000), category=free_text(3000),
              severity=severities, age_hours=event_ages),
)
risk_rows = st.one_of(
    st.builds(RiskRow, region=ordinary_regions, window_days=st.just(7), score=ordinary_scores,
              age_hours=recent_spike_ages),
    st.builds(RiskRow, region=free_text(SPIKE_REGION_MAX_CHARS), window_days=st.just(7),  # hostile text
              score=ordinary_scores, age_hours=recent_spike_ages),
    st.builds(RiskRow, region=region_text(SPIKE_REGION_MAX_CHARS), window_days=window_days, score=scores,
              age_hours=spike_ages),
)
asset_rows = st.one_of(
    st.builds(AssetRow, asset=st.sampled_from(["oil", "gas", " OIL ", "Gas", "oil:gas"]), region=ordinary_regions,
              window_days=st.just(7), score=ordinary_scores, age_hours=recent_spike_ages),
    st.builds(AssetRow, asset=asset_text, region=free_text(SPIKE_REGION_MAX_CHARS), window_days=st.just(7),
              score=ordinary_scores, age_hours=recent_spike_ages),  # hostile text
    st.builds(AssetRow, asset=asset_text, region=region_text(SPIKE_REGION_MAX_CHARS), window_days=window_days,
              score=scores, age_hours=spike_ages),
)


# --------------------------------------------------------------------------------------------
# Phase A reference model
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpectedAlert:
    alert_type: str
    scope_region: str
    scope_assets: tuple[str, ...]
    severity: int
    driver_event_ids: tuple[int, ...]
    risk_score: Decimal | None = None  # what a spike fired on
    fired_on_rise: bool | None = None


@dataclass
class PhaseAModel:
    alerts: dict[str, list[ExpectedAlert]]  # fingerprint -> candidates (several only on a collision)
    invalid: int
    verdicts: dict[str, str]  # "table#id" -> why the model does or does not raise an alert


def valid_score(score: Decimal | None) -> bool:
    return score is not None and not score.is_nan() and 0 <= score <= 100


def spike_severity(score: Decimal) -> int:
    return 5 if score >= 90 else 4 if score >= 80 else 3


def model_phase_a(events: list[tuple[int, EventRow, datetime]], risks: list[tuple[int, RiskRow, datetime]],
                  assets: list[tuple[int, AssetRow, datetime]], now: datetime) -> PhaseAModel:
    model = PhaseAModel(alerts=defaultdict(list), invalid=0, verdicts={})

    def add(fingerprint: str, alert: ExpectedAlert) -> None:
        model.alerts[fingerprint].append(alert)

    for event_id, row, inserted_at in events:
        key = f"events#{event_id}"
        region = trimmed(row.region)
        if inserted_at < now - HIGH_IMPACT_LOOKBACK:
            model.verdicts[key] = "older than the 24 h lookback"
        elif region is None or row.severity is None or not 1 <= row.severity <= 5:
            model.invalid += 1
            model.verdicts[key] = "invalid (blank region or severity outside 1-5)"
        elif row.severity < HIGH_IMPACT_MIN_SEVERITY:
            model.verdicts[key] = "severity below 4"
        else:
            model.verdicts[key] = "HIGH_IMPACT_EVENT"
            add(f"HIGH_IMPACT_EVENT:{event_id}",
                ExpectedAlert("HIGH_IMPACT_EVENT", region, (), row.severity, (event_id,)))

    def considered(row: RiskRow | AssetRow, ts: datetime) -> bool:
        return row.window_days == SPIKE_WINDOW_DAYS and ts >= now - SPIKE_MAX_AGE

    newest_regional: dict[str, tuple[datetime, int, Decimal]] = {}
    for risk_id, row, ts in risks:
        key = f"risk_indices#{risk_id}"
        region = trimmed(row.region)
        if not considered(row, ts):
            model.verdicts[key] = "not window 7 or older than 2 days"
        elif region is None or len(region) > REGION_MAX_CHARS:
            model.invalid += 1
            model.verdicts[key] = "invalid (blank or over-long region)"
        else:
            if not valid_score(row.score):
                model.invalid += 1
            model.verdicts[key] = "superseded by a newer reading" + ("" if valid_score(row.score) else " (invalid)")
            if region not in newest_regional or (ts, risk_id) > newest_regional[region][:2]:
                newest_regional[region] = (ts, risk_id, row.score)
    for region, (ts, risk_id, newest_score) in newest_regional.items():
        if not valid_score(newest_score):
            model.verdicts[f"risk_indices#{risk_id}"] = "newest, invalid score: no reading, nothing fires"
            continue
        score = newest_score
        earlier = [(p_ts, p_id, p.score) for p_id, p, p_ts in risks
                   if trimmed(p.region) == region and p.window_days == SPIKE_WINDOW_DAYS and valid_score(p.score)
                   and (p_ts, p_id) < (ts, risk_id)]
        previous = max(earlier)[2] if earlier else None
        rise = previous is not None and previous > 0 and score >= previous * SPIKE_RISE_FACTOR
        key = f"risk_indices#{risk_id}"
        if score >= SPIKE_MIN_SCORE or rise:
            model.verdicts[key] = f"REGIONAL_RISK_SPIKE (newest; previous valid score {previous})"
            add(f"REGIONAL_RISK_SPIKE:{fingerprint_part(region)}:{utc_day(ts)}",
                ExpectedAlert("REGIONAL_RISK_SPIKE", region, (), spike_severity(score), (), score, rise))
        else:
            model.verdicts[key] = f"newest, below 70 and no 20% rise over {previous}"

    newest_asset: dict[tuple[str, str], tuple[datetime, int, Decimal]] = {}
    for asset_id, row, ts in assets:
        key = f"asset_risk#{asset_id}"
        region = trimmed(row.region)
        asset = trimmed(row.asset)
        asset = asset.lower() if asset is not None else None
        if not considered(row, ts):
            model.verdicts[key] = "not window 7 or older than 2 days"
        elif region is None or len(region) > REGION_MAX_CHARS or asset is None or len(asset) > ASSET_MAX_CHARS:
            model.invalid += 1
            model.verdicts[key] = "invalid (blank or over-long region/asset)"
        else:
            if not valid_score(row.score):
                model.invalid += 1
            model.verdicts[key] = "superseded by a newer reading" + ("" if valid_score(row.score) else " (invalid)")
            if (region, asset) not in newest_asset or (ts, asset_id) > newest_asset[region, asset][:2]:
                newest_asset[region, asset] = (ts, asset_id, row.score)
    for (region, asset), (ts, asset_id, newest_score) in newest_asset.items():
        key = f"asset_risk#{asset_id}"
        if not valid_score(newest_score):
            model.verdicts[key] = "newest, invalid score: no reading, nothing fires"
            continue
        score = newest_score
        if score >= SPIKE_MIN_SCORE:
            model.verdicts[key] = "ASSET_RISK_SPIKE (newest)"
            add(f"ASSET_RISK_SPIKE:{fingerprint_part(region)}:{fingerprint_part(asset)}:{utc_day(ts)}",
                ExpectedAlert("ASSET_RISK_SPIKE", region, (asset,), spike_severity(score), (), score, False))
        else:
            model.verdicts[key] = "newest, below 70"
    return model


# --------------------------------------------------------------------------------------------
# Phase A property
# --------------------------------------------------------------------------------------------

def seed_phase_a(conn: psycopg.Connection, events: list[EventRow], risks: list[RiskRow], assets: list[AssetRow]):
    now = db_now(conn)
    seeded_events, seeded_risks, seeded_assets = [], [], []
    with conn.transaction():
        for row in events:
            ts = now - timedelta(hours=row.age_hours)
            (event_id,) = conn.execute(
                "INSERT INTO events (title, region, category, severity_score, inserted_at) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                [row.title, row.region, row.category, row.severity, ts]).fetchone()
            seeded_events.append((event_id, row, ts))
        for row in risks:
            ts = now - timedelta(hours=row.age_hours)
            (risk_id,) = conn.execute(
                "INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at) "
                "VALUES (%s, %s, %s, 'up', %s) RETURNING id", [row.region, row.window_days, row.score, ts]).fetchone()
            seeded_risks.append((risk_id, row, ts))
        for row in assets:
            ts = now - timedelta(hours=row.age_hours)
            (asset_id,) = conn.execute(
                "INSERT INTO asset_risk (asset, region, window_days, risk_score, direction, calculated_at) "
                "VALUES (%s, %s, %s, %s, 'up', %s) RETURNING id",
                [row.asset, row.region, row.window_days, row.score, ts]).fetchone()
            seeded_assets.append((asset_id, row, ts))
    return now, seeded_events, seeded_risks, seeded_assets


def alert_event_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT event_fingerprint, alert_type, scope_region, scope_assets, severity, driver_event_ids, "
        "length(headline), length(body), fanout_completed_at, risk_score, fired_on_rise "
        "FROM alert_events ORDER BY id").fetchall()


def fingerprint_part(name: str) -> str:
    """A region or asset as the fingerprint holds it: '\\' and ':' escaped with a backslash."""
    return name.replace("\\", "\\\\").replace(":", "\\:")


DAY = r"(\d{4}-\d{2}-\d{2})"


def fingerprint_problem(fp: str, alert_type: str, region: str, assets: list[str], drivers: list[int]) -> str | None:
    """Why this row breaks the contract's fingerprint format, or None."""
    if alert_type == "HIGH_IMPACT_EVENT":
        ok = assets == [] and len(drivers) == 1 and fp == f"HIGH_IMPACT_EVENT:{drivers[0]}"
        return None if ok else "expected HIGH_IMPACT_EVENT:{events.id}"
    if alert_type == "REGIONAL_RISK_SPIKE":
        match = re.fullmatch(re.escape(f"REGIONAL_RISK_SPIKE:{fingerprint_part(region)}:") + DAY, fp, re.S)
        if assets != [] or not match:
            return "expected REGIONAL_RISK_SPIKE:{region}:{YYYY-MM-DD}"
    elif alert_type == "ASSET_RISK_SPIKE":
        match = len(assets) == 1 and re.fullmatch(
            re.escape(f"ASSET_RISK_SPIKE:{fingerprint_part(region)}:{fingerprint_part(assets[0])}:") + DAY, fp, re.S)
        if not match:
            return "expected ASSET_RISK_SPIKE:{region}:{asset}:{YYYY-MM-DD}"
    else:
        return "unknown alert_type"
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return "not a real date"
    return None


@PROPERTY_SETTINGS
@given(events=st.lists(event_rows, max_size=5), risks=st.lists(risk_rows, max_size=6),
       assets=st.lists(asset_rows, max_size=6))
def test_phase_a_over_hostile_source_rows(conn, events, risks, assets):
    reset(conn)
    now, seeded_events, seeded_risks, seeded_assets = seed_phase_a(conn, events, risks, assets)
    model = model_phase_a(seeded_events, seeded_risks, seeded_assets, now)

    # The run never raises, whatever the data.
    try:
        first = call(conn, "alerts_phase_a")
    except psycopg.Error as error:
        pytest.fail(f"Phase A raised {type(error).__name__}: {error.diag.message_primary}")
    rows = alert_event_rows(conn)
    event(f"phase A alerts: {min(len(rows), 3)}{'+' if len(rows) >= 3 else ''}")

    # Fingerprints are unique.
    duplicated = [fp for fp, n in Counter(r[0] for r in rows).items() if n > 1]
    assert not duplicated, f"duplicate fingerprints: {duplicated}"

    # Every created event obeys the contract's fingerprint format and the engine's column rules.
    for fp, alert_type, region, scope_assets, severity, drivers, headline_len, body_len, fanned, *_ in rows:
        problem = fingerprint_problem(fp, alert_type, region, scope_assets, drivers)
        assert problem is None, f"fingerprint {fp[:120]!r} of a {alert_type}: {problem}"
        assert trimmed(region) == region and region, f"{fp[:120]!r}: scope_region {region[:60]!r} is blank/untrimmed"
        assert 1 <= severity <= 5 and headline_len <= 200 and body_len <= 2000, fp[:120]
        assert fanned is None, f"{fp[:120]!r}: Phase A set fanout_completed_at"

    # No event for an invalid (or non-qualifying) row: each alert traces back to a qualifying source row.
    by_id = {event_id: (row, ts) for event_id, row, ts in seeded_events}
    for fp, alert_type, region, scope_assets, _severity, drivers, *_ in rows:
        if alert_type == "HIGH_IMPACT_EVENT":
            source, ts = by_id[drivers[0]]
            assert trimmed(source.region) is not None and source.severity in (4, 5) \
                and ts >= now - HIGH_IMPACT_LOOKBACK, f"{fp} comes from an invalid or quiet event: {source!r}"
        else:
            table = seeded_risks if alert_type == "REGIONAL_RISK_SPIKE" else seeded_assets
            sources = [
                (row_id, row) for row_id, row, ts in table
                if trimmed(row.region) == region and row.window_days == SPIKE_WINDOW_DAYS and valid_score(row.score)
                and ts >= now - SPIKE_MAX_AGE and fp.endswith(":" + utc_day(ts))
                and (alert_type == "REGIONAL_RISK_SPIKE" or (trimmed(row.asset) or "").lower() == scope_assets[0])
            ]
            assert sources, f"{fp[:120]!r} has no valid source row"

    # Against the model: the same fingerprints, the same columns, the same counts.
    got = {r[0]: ExpectedAlert(r[1], r[2], tuple(r[3]), r[4], tuple(r[5]), r[9], r[10]) for r in rows}
    missing = sorted(set(model.alerts) - set(got))
    extra = sorted(set(got) - set(model.alerts))
    verdicts = "\n".join(f"  {k}: {v}" for k, v in model.verdicts.items())
    assert not missing and not extra, (
        f"Phase A disagrees with the model.\n missing: {[m[:120] for m in missing]}\n"
        f" unexpected: {[e[:120] for e in extra]}\n model verdicts per source row:\n{verdicts}")
    for fp, alert in got.items():
        assert alert in model.alerts[fp], f"{fp[:120]!r}: got {alert!r}, model {model.alerts[fp]!r}"
    if any(len(candidates) > 1 for candidates in model.alerts.values()):
        event("fingerprint collision between two sources")
    assert first["created"] == len(rows)
    assert first["candidates"] == sum(len(c) for c in model.alerts.values())
    assert first["invalid_source_rows"] == model.invalid, verdicts

    # Running Phase A again creates nothing and changes nothing.
    second = call(conn, "alerts_phase_a")
    assert second["created"] == 0, f"second Phase A created {second}"
    assert alert_event_rows(conn) == rows


# --------------------------------------------------------------------------------------------
# Phase B: generated users, plans, prefs, today's earlier deliveries
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanRow:
    types: tuple[str, ...]
    max_email: int | None
    config: object  # the JSON value stored in delivery_config


@dataclass(frozen=True)
class PrefRow:
    alert_type: str
    region: str
    asset: str | None
    threshold: int | None
    enabled: bool
    mode: str | None


@dataclass(frozen=True)
class EarlierDelivery:
    history_event: int  # 0 or 1: which already fanned-out event it belongs to
    channel: str
    kind: str
    status: str
    today: bool


@dataclass(frozen=True)
class UserRow:
    email: str | None
    email_verified: bool | None
    telegram: str | None
    phone: str | None
    plan: str | None  # None: no user_plans row, so 'free'
    prefs: tuple[PrefRow, ...]
    earlier: tuple[EarlierDelivery, ...]


@dataclass(frozen=True)
class AlertRow:
    alert_type: str
    region: str
    asset: str
    severity: int
    risk_score: Decimal | None = None  # spikes; None also for a spike stored before the column existed
    fired_on_rise: bool | None = None  # regional spikes

    @property
    def scope_assets(self) -> list[str]:
        return [self.asset] if self.alert_type == "ASSET_RISK_SPIKE" else []


REGIONS_B = ["Europe", "Asia", "Côte d'Ivoire"]
ASSETS_B = ["oil", "gas", "fx", "freight"]

channel_config = st.one_of(
    st.fixed_dictionaries({}, optional={
        "enabled": st.sampled_from([True, False, None, "true", "false", 1, 0]),
        "max_per_day": st.sampled_from([None, 0, 1, 2, 3, -1, 2.5, 0.4, 1e12, "5", True, []]),
        "digest": st.sampled_from([True, False, None, "true", 1]),
    }),
    st.sampled_from(["yes", 5, [], None, True, {"enabled": {"nested": True}}]),
)
delivery_configs = st.one_of(
    st.dictionaries(st.sampled_from([*CHANNELS, "fax"]), channel_config, max_size=4),
    st.dictionaries(st.sampled_from(CHANNELS), channel_config, max_size=3),
    st.sampled_from([[], "email", 5, None]),
)
odd_plans = st.builds(
    PlanRow,
    types=st.lists(st.sampled_from([*ALL_TYPES, "high_impact_event", "OTHER"]), unique=True, max_size=4).map(tuple),
    max_email=st.sampled_from([None, 0, 1, 2, 3, -1]),
    config=delivery_configs,
)
ordinary_plans = st.builds(  # every type, channels mostly on, small caps
    PlanRow,
    types=st.just(ALL_TYPES),
    max_email=st.sampled_from([None, None, 1, 2, 3]),
    config=st.dictionaries(st.sampled_from(CHANNELS), st.fixed_dictionaries({}, optional={
        "enabled": st.sampled_from([True, True, False]),
        "max_per_day": st.sampled_from([None, 1, 2, 3, 100]),
        "digest": st.booleans(),
    }), max_size=3),
)
plan_rows = st.one_of(ordinary_plans, ordinary_plans, odd_plans)
earlier_deliveries = st.builds(
    EarlierDelivery, history_event=st.integers(0, 1), channel=st.sampled_from(["email", "email", "telegram", "sms"]),
    kind=st.sampled_from(["instant", "digest"]),
    status=st.sampled_from(["skipped", "sent", "queued", "failed", "skipped"]),  # skipped rows don't count
    today=st.sampled_from([True, True, False]),
)
@st.composite
def alert_rows(draw) -> AlertRow:
    """An alert event as Phase A stores it: spikes carry a score (or none, stored before the
    column existed) and regional spikes whether their rise rule held."""
    alert_type = draw(st.sampled_from(ALL_TYPES))
    region, asset, severity = draw(st.sampled_from(REGIONS_B)), draw(st.sampled_from(ASSETS_B)), draw(st.integers(1, 5))
    if alert_type == "HIGH_IMPACT_EVENT":
        return AlertRow(alert_type, region, asset, severity)
    score = draw(st.sampled_from([None, Decimal(0), Decimal(50), Decimal(70), Decimal("79.5"), Decimal(80),
                                  Decimal(90), Decimal(100)]))
    rise = None if score is None else alert_type == "REGIONAL_RISK_SPIKE" and draw(st.booleans())
    return AlertRow(alert_type, region, asset, severity, score, rise)


@dataclass(frozen=True)
class World:
    plans: dict[str, PlanRow]
    users: tuple[UserRow, ...]
    alerts: tuple[AlertRow, ...]
    stale: AlertRow | None  # an un-fanned event older than fanout_lookback


@st.composite
def worlds(draw) -> World:
    """Alerts first, then prefs that often aim at them (else hardly anyone would match anything)."""
    alerts = tuple(draw(st.lists(alert_rows(), min_size=1, max_size=5)))

    def pref() -> PrefRow:
        target = draw(st.sampled_from(alerts))
        # A threshold at the target's score and just above it.
        target_thresholds = [] if target.risk_score is None else [int(target.risk_score), int(target.risk_score) + 1]
        mode = draw(st.sampled_from(["instant", "digest", None, None, "weekly", "INSTANT"]))
        if draw(st.sampled_from([True, True, False])):  # a pref meant to match the target
            return PrefRow(target.alert_type, draw(st.sampled_from(["global", target.region])),
                           draw(st.sampled_from([None, target.asset])),
                           draw(st.sampled_from([None, 70, 0, *target_thresholds])), True, mode)
        return PrefRow(  # anything, near misses included
            alert_type=draw(st.sampled_from([target.alert_type, *ALL_TYPES, "high_impact_event"])),
            region=draw(st.sampled_from(["global", target.region, *REGIONS_B, "GLOBAL", target.region.lower()])),
            asset=draw(st.sampled_from([None, target.asset, "oil", "OIL"])),
            threshold=draw(st.sampled_from([None, target.severity, 0, 70, 80, 100, 101, -1, *target_thresholds])),
            enabled=draw(st.booleans()),
            mode=mode,
        )

    def user() -> UserRow:
        if draw(st.sampled_from([True, True, False])):  # an ordinary subscriber
            email = draw(st.sampled_from(["a@example.com", "o'brien+<x>@example.com", None]))
            verified = draw(st.sampled_from([True, True, None]))
            telegram = draw(st.sampled_from(["123456789", None]))
            phone = draw(st.sampled_from(["+15550000001", None]))
            plan = draw(st.sampled_from([None, *PLAN_CODES]))
        else:
            email = draw(st.sampled_from([None, "", "   ", "\t", "a@example.com"]))
            verified = draw(st.sampled_from([True, False, None]))
            telegram = draw(st.sampled_from([None, "", " ", "123456789"]))
            phone = draw(st.sampled_from([None, "", "+15550000001"]))
            plan = draw(st.sampled_from([None, *PLAN_CODES, "legacy"]))
        return UserRow(
            email, verified, telegram, phone, plan,
            prefs=tuple(pref() for _ in range(draw(st.sampled_from([1, 1, 2, 2, 3, 0])))),
            earlier=tuple(draw(st.lists(earlier_deliveries, max_size=3,
                                        unique_by=lambda d: (d.history_event, d.channel, d.kind)))),
        )

    plans = {code: draw(plan_rows) for code in PLAN_CODES if draw(st.sampled_from([False, True, True, True]))}
    users = tuple(user() for _ in range(draw(st.integers(1, 8))))
    return World(plans, users, alerts, draw(st.none() | alert_rows()))


# --------------------------------------------------------------------------------------------
# Phase B reference model
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelRule:
    enabled: bool
    cap: int | None
    digest_by_default: bool


def channel_rule(plan: PlanRow, channel: str) -> ChannelRule:
    """What delivery_config (and max_email_alerts_per_day) says about one channel of a plan."""
    section = plan.config.get(channel) if isinstance(plan.config, dict) else None
    section = section if isinstance(section, dict) else {}
    enabled = section.get("enabled")
    enabled = enabled if isinstance(enabled, bool) else ENABLED_BY_DEFAULT[channel]
    max_per_day = section.get("max_per_day")
    if isinstance(max_per_day, int | float) and not isinstance(max_per_day, bool):
        clamped = min(max(Decimal(repr(max_per_day)), Decimal(0)), Decimal(INT_MAX))
        cap: int | None = int(clamped.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif channel == "email" and plan.max_email is not None:
        cap = max(plan.max_email, 0)
    else:
        cap = None
    return ChannelRule(enabled, cap, section.get("digest") is True)


def pref_matches(pref: PrefRow, alert: AlertRow) -> bool:
    return (pref.enabled and pref.alert_type == alert.alert_type
            and (pref.region == "global" or pref.region == alert.region)
            and (alert.alert_type != "ASSET_RISK_SPIKE" or pref.asset is None or pref.asset in alert.scope_assets)
            and (pref.threshold is None or alert.alert_type not in SPIKE_TYPES or alert.risk_score is None
                 or alert.risk_score >= pref.threshold or alert.fired_on_rise is True))


def destination(user: UserRow, channel: str) -> str | None:
    return trimmed({"email": user.email, "telegram": user.telegram, "sms": user.phone}[channel])


def earlier_today(user: UserRow, channel: str) -> int:
    return sum(1 for d in user.earlier if d.channel == channel and d.today and d.status != "skipped")


Key = tuple[int, int, str]  # (alert_event_id, user_id, channel)


@dataclass
class PhaseBModel:
    deliveries: dict[Key, str]  # -> delivery_kind
    verdicts: dict[Key, str]  # why the model creates nothing for this key
    quota_suppressed: int


def model_phase_b(plans: dict[str, PlanRow], users: dict[int, UserRow], alerts: dict[int, AlertRow]) -> PhaseBModel:
    model = PhaseBModel({}, {}, 0)
    eligible: dict[tuple[int, str], list[tuple[int, int, str]]] = defaultdict(list)
    for alert_id, alert in alerts.items():
        for user_id, user in users.items():
            matching = [p for p in user.prefs if pref_matches(p, alert)]
            plan = plans.get(user.plan or "free")
            for channel in CHANNELS:
                key = (alert_id, user_id, channel)
                if not matching:
                    model.verdicts[key] = "no enabled matching pref"
                elif user.email_verified is False:
                    model.verdicts[key] = "email_verified is false"
                elif plan is None:
                    model.verdicts[key] = f"plan {user.plan or 'free'!r} has no plan_settings row"
                elif alert.alert_type not in plan.types:
                    model.verdicts[key] = "alert type not allowed by the plan"
                elif not channel_rule(plan, channel).enabled:
                    model.verdicts[key] = "channel disabled by delivery_config"
                elif destination(user, channel) is None:
                    model.verdicts[key] = "no destination for the channel"
                else:
                    modes = [p.mode for p in matching]
                    if "instant" in modes:
                        kind = "instant"
                    elif any(m not in ("instant", "digest") for m in modes):
                        kind = "digest" if channel_rule(plan, channel).digest_by_default else "instant"
                    else:
                        kind = "digest"
                    eligible[user_id, channel].append((-alert.severity, alert_id, kind))
    for (user_id, channel), candidates in eligible.items():
        user = users[user_id]
        cap = channel_rule(plans[user.plan or "free"], channel).cap
        room = len(candidates) if cap is None else max(0, cap - earlier_today(user, channel))
        for rank, (_, alert_id, kind) in enumerate(sorted(candidates)):
            if rank < room:
                model.deliveries[alert_id, user_id, channel] = kind
            else:
                model.verdicts[alert_id, user_id, channel] = f"over the daily cap {cap}"
                model.quota_suppressed += 1
    return model


def seed_phase_b(conn: psycopg.Connection, plans: dict[str, PlanRow], users: list[UserRow],
                 alerts: list[AlertRow], stale: AlertRow | None):
    now = db_now(conn)
    user_ids: dict[int, UserRow] = {}
    alert_ids: dict[int, AlertRow] = {}
    stale_id = None

    def insert_alert(row: AlertRow, fingerprint: str, created_at: datetime, fanned: datetime | None) -> int:
        (alert_id,) = conn.execute(
            "INSERT INTO alert_events (alert_type, scope_region, scope_assets, severity, headline, "
            "event_fingerprint, created_at, fanout_completed_at, risk_score, fired_on_rise) "
            "VALUES (%s, %s, %s, %s, 'h', %s, %s, %s, %s, %s) RETURNING id",
            [row.alert_type, row.region, row.scope_assets, row.severity, fingerprint, created_at, fanned,
             row.risk_score, row.fired_on_rise]).fetchone()
        return alert_id

    with conn.transaction():
        for code, plan in plans.items():
            conn.execute("INSERT INTO plan_settings (plan_code, allowed_alert_types, max_email_alerts_per_day, "
                         "delivery_config) VALUES (%s, %s, %s, %s::jsonb)",
                         [code, list(plan.types), plan.max_email, json.dumps(plan.config)])
        history = [insert_alert(AlertRow("HIGH_IMPACT_EVENT", "Europe", "oil", 5), f"HISTORY:{i}",
                                now - timedelta(hours=1), now) for i in range(2)]
        for user in users:
            (user_id,) = conn.execute(
                "INSERT INTO users (email, email_verified, telegram_chat_id, phone_number) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [user.email, user.email_verified, user.telegram, user.phone]).fetchone()
            user_ids[user_id] = user
            if user.plan is not None:
                conn.execute("INSERT INTO user_plans (user_id, plan) VALUES (%s, %s)", [user_id, user.plan])
            for p in user.prefs:
                conn.execute("INSERT INTO user_alert_prefs (user_id, alert_type, region, asset, threshold, enabled, "
                             "delivery_mode) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             [user_id, p.alert_type, p.region, p.asset, p.threshold, p.enabled, p.mode])
            for d in user.earlier:
                conn.execute(
                    "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind, status, "
                    "sent_at, last_error, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [history[d.history_event], user_id, d.channel, d.kind, d.status,
                     now if d.status == "sent" else None, "boom" if d.status == "failed" else None,
                     now if d.today else now - timedelta(days=2)])
        for i, alert in enumerate(alerts):
            alert_ids[insert_alert(alert, f"PENDING:{i}", now - timedelta(minutes=5), None)] = alert
        if stale is not None:
            stale_id = insert_alert(stale, "STALE", now - FANOUT_LOOKBACK - timedelta(days=1), None)
    return user_ids, alert_ids, stale_id


def new_deliveries(conn: psycopg.Connection, alert_ids) -> list[tuple[int, int, str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT alert_event_id, user_id, channel, delivery_kind FROM user_alert_deliveries "
        "WHERE alert_event_id = ANY(%s) ORDER BY id", [list(alert_ids)]).fetchall()]


@PROPERTY_SETTINGS
@given(world=worlds())
def test_phase_b_fanout_follows_the_contract(conn, world):
    reset(conn)
    plans = world.plans
    user_ids, alert_ids, stale_id = seed_phase_b(conn, plans, world.users, world.alerts, world.stale)
    model = model_phase_b(plans, user_ids, alert_ids)

    try:
        first = call(conn, "alerts_phase_b")
    except psycopg.Error as error:
        pytest.fail(f"Phase B raised {type(error).__name__}: {error.diag.message_primary}")
    created = new_deliveries(conn, alert_ids)
    event(f"phase B deliveries: {min(len(created), 5)}{'+' if len(created) >= 5 else ''}")
    if model.quota_suppressed:
        event("a daily cap suppressed deliveries")
    if any(kind == "digest" for *_, kind in created):
        event("digest deliveries")

    # At most one delivery per (event, user, channel, kind), and in fact per (event, user, channel).
    per_kind = [k for k, n in Counter(created).items() if n > 1]
    assert not per_kind, f"duplicate (event, user, channel, kind): {per_kind}"
    per_channel = [k for k, n in Counter(d[:3] for d in created).items() if n > 1]
    assert not per_channel, f"several kinds for one (event, user, channel): {per_channel}"

    # Every processed event has fanout_completed_at; the one outside the lookback is left alone.
    unmarked = conn.execute("SELECT id FROM alert_events WHERE id = ANY(%s) AND fanout_completed_at IS NULL",
                            [list(alert_ids)]).fetchall()
    assert not unmarked, f"events without fanout_completed_at: {unmarked}"
    assert first["events_fanned_out"] == len(alert_ids)
    if stale_id is not None:
        assert conn.execute("SELECT fanout_completed_at IS NULL, (SELECT count(*) FROM user_alert_deliveries "
                            "WHERE alert_event_id = %s) FROM alert_events WHERE id = %s",
                            [stale_id, stale_id]).fetchone() == (True, 0), "an event outside the lookback was touched"
        assert first["events_outside_lookback"] == 1

    # No delivery breaks a rule of "Who gets a delivery".
    for alert_id, user_id, channel, kind in created:
        alert, user = alert_ids[alert_id], user_ids[user_id]
        where = f"delivery (event {alert_id}, user {user_id}, {channel}, {kind}) of {alert!r} to {user!r}"
        assert any(pref_matches(p, alert) for p in user.prefs), f"{where}: no enabled matching pref"
        assert user.email_verified is not False, f"{where}: email_verified is false"
        plan = plans.get(user.plan or "free")
        assert plan is not None, f"{where}: the plan has no plan_settings row"
        assert alert.alert_type in plan.types, f"{where}: alert type not allowed by {plan!r}"
        assert channel_rule(plan, channel).enabled, f"{where}: channel disabled by {plan.config!r}"
        assert destination(user, channel) is not None, f"{where}: no destination"

    # Per (user, channel), today's deliveries never exceed the daily cap.
    for (user_id, channel), n in Counter((d[1], d[2]) for d in created).items():
        user = user_ids[user_id]
        cap = channel_rule(plans[user.plan or "free"], channel).cap
        if cap is not None:
            before = earlier_today(user, channel)
            assert n <= max(0, cap - before), (
                f"user {user_id} {channel}: {n} new + {before} earlier today exceeds the cap {cap}")

    # Against the model: the same set of (event, user, channel, kind).
    got = {d[:3]: d[3] for d in created}
    problems = []
    for key in sorted(set(got) | set(model.deliveries)):
        if key not in model.deliveries:
            problems.append(f"created {key + (got[key],)} but the model says: {model.verdicts[key]}")
        elif key not in got:
            problems.append(f"missing {key + (model.deliveries[key],)}")
        elif got[key] != model.deliveries[key]:
            problems.append(f"{key}: kind {got[key]}, model {model.deliveries[key]}")
    assert not problems, "Phase B disagrees with the model:\n  " + "\n  ".join(problems)
    assert first["deliveries_created"] == len(created)
    assert first["quota_suppressed"] == model.quota_suppressed

    # A second run creates nothing; re-fanning the same events (marker cleared) creates nothing either.
    second = call(conn, "alerts_phase_b")
    assert second["deliveries_created"] == 0 and second["events_fanned_out"] == 0, f"second Phase B: {second}"
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL WHERE id = ANY(%s)", [list(alert_ids)])
    third = call(conn, "alerts_phase_b")
    assert third["deliveries_created"] == 0, f"re-fanning created deliveries: {third}"
    assert new_deliveries(conn, alert_ids) == created


# --------------------------------------------------------------------------------------------
# Known Phase A bugs found by the properties above (minimal examples). strict: once fixed, these
# XPASS and fail, as a reminder to drop the marker and widen SPIKE_*_MAX_CHARS / the timestamps.
# --------------------------------------------------------------------------------------------

def _insert_risk(conn: psycopg.Connection, region: str, calculated_at: str = "now") -> None:
    conn.execute("INSERT INTO risk_indices (region, window_days, risk_score, trend, calculated_at) "
                 "VALUES (%s, 7, 95, 'up', %s::timestamptz)", [region, calculated_at])


def test_a_long_spike_region_is_invalid_and_does_not_abort_phase_a(conn):
    _insert_risk(conn, "".join(random.Random(0).choices(string.ascii_letters + string.digits, k=2800)))
    conn.execute("INSERT INTO events (title, region, severity_score) VALUES ('ok', 'Europe', 5)")
    counts = call(conn, "alerts_phase_a")
    assert counts["created_by_type"] == {"HIGH_IMPACT_EVENT": 1} and counts["invalid_source_rows"] == 1


def test_an_infinite_calculated_at_is_invalid_and_does_not_pin_the_region(conn):
    _insert_risk(conn, "Europe", "infinity")
    counts = call(conn, "alerts_phase_a")
    assert counts["created"] == 0 and counts["invalid_source_rows"] == 1
    _insert_risk(conn, "Europe")
    assert call(conn, "alerts_phase_a")["created"] == 1
    (fingerprint,) = conn.execute("SELECT event_fingerprint FROM alert_events").fetchone()
    assert re.fullmatch(r"REGIONAL_RISK_SPIKE:Europe:\d{4}-\d{2}-\d{2}", fingerprint), fingerprint
