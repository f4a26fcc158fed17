"""The database cases of the benchmark. Each builds its data (untimed), settles the database, then times
the engine and its bare-SQL baseline on the same server, in this process, from the same state."""

import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from alerts.counts import while_more
from alerts.delivery import DEFAULT_BATCH_SIZE
from alerts.fanout import fan_out
from bench import data
from bench.database import connect, reset_tables, scalar, settle, stats_state, timed
from bench.procs import ROOT, Child
from bench.report import Result, own_peak_rss_mb, ratio
from bench.scales import Scale

log = logging.getLogger("bench")

PHASE_B_INPUTS = ["users", "user_plans", "plan_settings", "user_alert_prefs", "alert_events",
                  "user_alert_deliveries"]
BARE_FANOUT = (
    "INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)"
    " SELECT e.id, u.id, 'email', 'instant' FROM alert_events e CROSS JOIN users u"
)
ALERT_EVENT_COLUMNS = ("alert_type, scope_region, scope_assets, severity, headline, body, driver_event_ids,"
                       " event_fingerprint")
SEND_RATE_FLOOR = 10_000


@dataclass
class Context:
    url: str
    conn: psycopg.Connection
    scale: Scale
    workdir: Path
    repeat: int = 1  # engine/baseline pairs per analysed variant; the fastest of each is reported

    def result(self, case: str, variant: str, rows: int, seconds: float, target: str, met: bool, *,
               baseline_seconds: float | None = None, ratio_to_baseline: float | None = None,
               peak_rss_mb: float | None = None, **details: object) -> Result:
        """A Result of this scale; peak RSS defaults to this process's (the SQL-only cases)."""
        return Result(case=case, variant=variant, scale=self.scale.name, rows=rows, seconds=seconds,
                      target=target, met=met, baseline_seconds=baseline_seconds,
                      ratio_to_baseline=ratio_to_baseline,
                      peak_rss_mb=own_peak_rss_mb() if peak_rss_mb is None else peak_rss_mb, details=details)


# ---------------------------------------------------------------- cases 1 and 2: Phase B


def run_phase_b(ctx: Context) -> tuple[float, dict]:
    """Phase B as the runner runs it: bounded steps until done (alerts.fanout), timed as a whole."""
    started = time.perf_counter()
    counts = fan_out(ctx.conn)
    return time.perf_counter() - started, counts


def reset_fanout(conn: psycopg.Connection) -> None:
    """Back to the state before the fanout: no deliveries, every event un-fanned, stats fresh."""
    conn.execute("TRUNCATE user_alert_deliveries RESTART IDENTITY CASCADE")
    conn.execute("UPDATE alert_events SET fanout_completed_at = NULL, fanout_user_cursor = NULL")
    settle(conn, analyze=True)


def phase_b_cases(ctx: Context, wanted: set[str]) -> list[Result]:
    """E events x U users. As-is first (ctx.repeat fresh loads, each fanned out right after the load,
    no ANALYZE), then the bare INSERT ... SELECT and the engine from the same analysed state
    (ctx.repeat pairs), then the reruns. Each variant reports its fastest sample."""
    s, conn = ctx.scale, ctx.conn
    expected = s.fanout_rows
    asis_firsts: list[float] = []
    for _ in range(ctx.repeat):  # as many as-is samples as analysed ones: fastest of N against fastest of N
        reset_tables(conn)
        data.population(conn, s.fanout_users)
        data.alert_events(conn, s.fanout_events, fanned_out=False)
        settle(conn, analyze=False)
        stale = stats_state(conn, PHASE_B_INPUTS)
        seconds, asis_counts = run_phase_b(ctx)
        asis_firsts.append(seconds)
    asis_first = min(asis_firsts)
    settle(conn, analyze=False)
    asis_rerun, asis_rerun_counts = run_phase_b(ctx)

    baselines: list[float] = []
    firsts: list[float] = []
    for _ in range(ctx.repeat):
        reset_fanout(conn)
        seconds, baseline_rows = timed(conn, BARE_FANOUT)
        baselines.append(seconds)
        reset_fanout(conn)
        seconds, counts = run_phase_b(ctx)
        firsts.append(seconds)
    baseline, first = min(baselines), min(firsts)
    settle(conn, analyze=True)  # what autovacuum does after the fanout's bulk insert
    rerun, rerun_counts = run_phase_b(ctx)

    results: list[Result] = []
    if "phase_b_fanout" in wanted:
        for variant, seconds, got, extra in (
                ("analyzed", first, counts, {"samples": firsts, "baseline_samples": baselines}),
                ("as-is", asis_first, asis_counts, {"samples": asis_firsts, "rows_changed_since_analyze": stale})):
            created = int(got.get("deliveries_created", 0))
            r = ratio(seconds, baseline)
            results.append(ctx.result(
                "phase_b_fanout", variant, created, seconds, "<= 1.5x bare INSERT", created == expected and r <= 1.5,
                baseline_seconds=baseline, ratio_to_baseline=r, expected_rows=expected, baseline_rows=baseline_rows,
                counts=got, **extra))
    if "phase_b_rerun" in wanted:
        for variant, seconds, of_first, got in (("analyzed", rerun, first, rerun_counts),
                                                ("as-is", asis_rerun, asis_first, asis_rerun_counts)):
            r = ratio(seconds, of_first)
            results.append(ctx.result(
                "phase_b_rerun", variant, expected, seconds, "< 2% of first run",
                int(got.get("deliveries_created", -1)) == 0 and r < 0.02,
                baseline_seconds=of_first, ratio_to_baseline=r, counts=got))
    return results


# ---------------------------------------------------------------- case 3: Phase C send


def prepare_send_queue(ctx: Context, *, analyze: bool) -> int:
    reset_tables(ctx.conn)
    queued = data.send_queue(ctx.conn, ctx.scale.send_events, ctx.scale.send_users)
    settle(ctx.conn, analyze=analyze)
    return queued


def run_workers(ctx: Context, mode: str, batch: int, workers: int = 2) -> tuple[float, int, float]:
    """Start the workers, release them together, return (seconds, rows, peak RSS MB of the largest)."""
    outbox = ctx.workdir / f"outbox-{mode}-{batch}-{time.time_ns()}.jsonl"
    children = [Child(["-m", "devtools.claim_worker", mode, ctx.url, str(batch), str(outbox)]) for _ in range(workers)]
    for child in children:
        if child.readline().strip() != "ready":
            raise RuntimeError(f"{mode} worker did not start: {child.wait().stderr[-2000:]}")
    released = time.time()
    for child in children:
        child.send("go\n")
    finished = [child.wait() for child in children]
    for done in finished:
        if done.exit_code != 0:
            raise RuntimeError(f"{mode} worker exited {done.exit_code}: {done.stderr[-2000:]}")
    reports = [json.loads(done.stdout.strip().splitlines()[-1]) for done in finished]
    outbox.unlink(missing_ok=True)
    seconds = max(float(rep["finished"]) for rep in reports) - released
    return seconds, sum(int(rep["rows"]) for rep in reports), max(done.peak_rss_mb for done in finished)


def sent_count(conn: psycopg.Connection) -> int:
    return int(scalar(conn, "SELECT count(*) FROM user_alert_deliveries WHERE status = 'sent'"))  # type: ignore[arg-type]


def phase_c_cases(ctx: Context) -> list[Result]:
    """D queued deliveries, 2 workers: deliver() with the file outbox vs the bare claim+complete loop,
    from the same freshly loaded queue each time (ctx.repeat pairs per batch size, ctx.repeat as-is). The
    target applies at the runner's batch size (DEFAULT_BATCH_SIZE); other sizes are for comparison."""
    results: list[Result] = []
    for batch in ctx.scale.send_batches:
        bare: list[tuple[float, int]] = []
        engine: list[tuple[float, int, int, float]] = []
        for _ in range(ctx.repeat):
            expected = prepare_send_queue(ctx, analyze=True)
            bare.append(run_workers(ctx, "bare", batch)[:2])
            engine.append(send_with_engine(ctx, batch, analyze=True))
        baseline, baseline_rows = min(bare)
        targeted = batch == DEFAULT_BATCH_SIZE
        runs = [("analyzed", engine)]
        if targeted:
            runs.append(("as-is", [send_with_engine(ctx, batch, analyze=False) for _ in range(ctx.repeat)]))
        for variant, samples in runs:
            seconds, rows, sent, rss = min(samples)
            r = ratio(seconds, baseline)
            rate = sent / seconds if seconds > 0 else 0.0
            complete = sent == expected == rows
            results.append(ctx.result(
                "phase_c_send", f"batch={batch} {variant}", sent, seconds,
                f"<= 2.0x bare loop (>= 0.5x rate), >= {SEND_RATE_FLOOR:,}/s" if targeted
                else f"none: the runner claims {DEFAULT_BATCH_SIZE}",
                (complete and r <= 2.0 and rate >= SEND_RATE_FLOOR) if targeted else (None if complete else False),
                baseline_seconds=baseline, ratio_to_baseline=r, peak_rss_mb=rss, workers=2, batch=batch,
                expected_rows=expected, baseline_rows=baseline_rows, baseline_rows_per_s=baseline_rows / baseline,
                samples=[e[0] for e in samples], baseline_samples=[b[0] for b in bare]))
    return results


def send_with_engine(ctx: Context, batch: int, *, analyze: bool) -> tuple[float, int, int, float]:
    """(seconds, rows the workers report, rows now 'sent', peak RSS MB) from a fresh queue."""
    prepare_send_queue(ctx, analyze=analyze)
    seconds, rows, rss = run_workers(ctx, "engine", batch)
    return seconds, rows, sent_count(ctx.conn), rss


# ---------------------------------------------------------------- case 4: claim cost vs queue size


def claim_times(conn: psycopg.Connection, batch: int, samples: int) -> tuple[float, float, int]:
    """(fastest, median) seconds of one claim_deliveries(batch), each rolled back, and the rows
    one claim took; one warm-up first. The fastest is what the case judges: one claim takes a few
    milliseconds, so a single stall of the shared machine moves a median of 21 by half."""
    times: list[float] = []
    claimed = 0
    for _ in range(samples + 1):
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            claimed = len(conn.execute("SELECT * FROM claim_deliveries(%s)", [batch]).fetchall())
            times.append(time.perf_counter() - started)
    return min(times[1:]), statistics.median(times[1:]), claimed


def grow_queue(conn: psycopg.Connection, users: int, target_rows: int) -> None:
    """Add events x users queued deliveries until the queue holds target_rows (created later,
    so they queue behind the first ones, as new fanouts do)."""
    missing_events = max(0, (target_rows - queue_size(conn)) // users)
    for start in range(0, missing_events, 50):
        ids = data.alert_events(conn, min(50, missing_events - start), fanned_out=True)
        data.queued_deliveries(conn, ids)


def queue_size(conn: psycopg.Connection) -> int:
    return int(scalar(conn, "SELECT count(*) FROM user_alert_deliveries WHERE status = 'queued'"))  # type: ignore[arg-type]


def claim_growth_cases(ctx: Context) -> list[Result]:
    """Median claim from the small queue, then from the grown one: as-is (no ANALYZE since the
    bulk insert) in the session that claimed from the small queue (plan cache warm: a long-lived
    worker) and in a new session (a new runner), then analysed."""
    s, conn = ctx.scale, ctx.conn
    reset_tables(conn)
    users = s.claim_small_queue
    data.population(conn, users)
    data.queued_deliveries(conn, data.alert_events(conn, 1, fanned_out=True))
    settle(conn, analyze=True)
    small, small_median, claimed_small = claim_times(conn, s.claim_batch, s.claim_samples)
    results = [ctx.result("claim_growth", f"queue={queue_size(conn):,}", claimed_small, small, "baseline", True,
                          baseline_seconds=small, ratio_to_baseline=1.0, samples=s.claim_samples,
                          median_seconds=small_median, queue_rows=queue_size(conn))]
    grow_queue(conn, users, s.claim_large_queue)
    settle(conn, analyze=False)
    measured = [("as-is, same session", claim_times(conn, s.claim_batch, s.claim_samples))]
    with connect(ctx.url) as fresh:
        measured.append(("as-is, new session", claim_times(fresh, s.claim_batch, s.claim_samples)))
    settle(conn, analyze=True)
    measured.append(("analyzed", claim_times(conn, s.claim_batch, s.claim_samples)))
    for variant, (seconds, median, claimed) in measured:
        r = ratio(seconds, small)
        results.append(ctx.result(
            "claim_growth", f"queue={queue_size(conn):,} {variant}", claimed, seconds, "<= 2.0x the small queue",
            claimed == s.claim_batch and r <= 2.0, baseline_seconds=small, ratio_to_baseline=r,
            samples=s.claim_samples, median_seconds=median, median_ratio=ratio(median, small_median),
            queue_rows=queue_size(conn)))
    return results


# ---------------------------------------------------------------- case 5: Phase A


def run_phase_a(conn: psycopg.Connection) -> tuple[float, dict]:
    """Phase A as the runner runs it: calls while "more" new events wait (alerts.counts), timed as a whole."""
    started = time.perf_counter()
    counts = while_more(lambda: conn.execute("SELECT alerts_phase_a()").fetchone()[0])  # type: ignore[index]
    return time.perf_counter() - started, counts


def bare_phase_a_insert(conn: psycopg.Connection) -> tuple[float, int]:
    """Copy the engine's alert events aside, empty alert_events, time the bare INSERT ... SELECT."""
    conn.execute(f"DROP TABLE IF EXISTS bench_alert_events_copy; CREATE TABLE bench_alert_events_copy AS "
                 f"SELECT {ALERT_EVENT_COLUMNS} FROM alert_events".encode())
    conn.execute("TRUNCATE alert_events RESTART IDENTITY CASCADE")
    settle(conn, analyze=True)
    seconds, rows = timed(conn, f"INSERT INTO alert_events ({ALERT_EVENT_COLUMNS}) "
                                f"SELECT {ALERT_EVENT_COLUMNS} FROM bench_alert_events_copy")
    conn.execute("DROP TABLE bench_alert_events_copy")
    return seconds, int(rows)  # type: ignore[call-overload]


def phase_a_cases(ctx: Context) -> list[Result]:
    """As-is first (ctx.repeat fresh source loads, each run and rerun right after the load), then
    ctx.repeat rounds of first run, rerun and the bare INSERT ... SELECT of what the first run
    created, from the same analysed state. Each variant reports its fastest sample."""
    s, conn = ctx.scale, ctx.conn
    asis_firsts: list[float] = []
    asis_reruns: list[float] = []
    for _ in range(ctx.repeat):  # as many as-is samples as analysed ones
        reset_tables(conn)
        data.phase_a_sources(conn, s.source_events, s.index_rows)
        settle(conn, analyze=False)
        stale = stats_state(conn, ["events", "risk_indices", "asset_risk", "alert_events"])
        seconds, asis_counts = run_phase_a(conn)
        asis_firsts.append(seconds)
        settle(conn, analyze=False)
        seconds, asis_rerun_counts = run_phase_a(conn)
        asis_reruns.append(seconds)
    asis_first, asis_rerun = min(asis_firsts), min(asis_reruns)

    firsts: list[float] = []
    reruns: list[float] = []
    baselines: list[float] = []
    for _ in range(ctx.repeat):
        conn.execute("TRUNCATE alert_events RESTART IDENTITY CASCADE")
        settle(conn, analyze=True)
        seconds, counts = run_phase_a(conn)
        firsts.append(seconds)
        settle(conn, analyze=True)
        seconds, rerun_counts = run_phase_a(conn)
        reruns.append(seconds)
        seconds, baseline_rows = bare_phase_a_insert(conn)
        baselines.append(seconds)
    first, rerun, baseline = min(firsts), min(reruns), min(baselines)

    results: list[Result] = []
    for variant, seconds, got, extra in (("analyzed", first, counts, {"samples": firsts}),
                                         ("as-is", asis_first, asis_counts,
                                          {"samples": asis_firsts, "rows_changed_since_analyze": stale})):
        r = ratio(seconds, baseline)
        created = int(got.get("created", 0))
        results.append(ctx.result(
            "phase_a", f"first {variant}", created, seconds, "<= 3x bare INSERT", created == baseline_rows and r <= 3,
            baseline_seconds=baseline, ratio_to_baseline=r, source_events=s.source_events,
            index_rows=s.index_rows, counts=got, baseline_samples=baselines, **extra))
    for variant, seconds, of_first, got in (("analyzed", rerun, first, rerun_counts),
                                            ("as-is", asis_rerun, asis_first, asis_rerun_counts)):
        r = ratio(seconds, of_first)
        results.append(ctx.result(
            "phase_a", f"rerun {variant}", int(got.get("candidates", 0)), seconds, "< 20% of first run",
            int(got.get("created", -1)) == 0 and r < 0.2, baseline_seconds=of_first, ratio_to_baseline=r,
            counts=got, samples=reruns if variant == "analyzed" else asis_reruns))
    return results


# ---------------------------------------------------------------- case 6: runner memory


def run_runner(ctx: Context, deliveries: int) -> tuple[float, float, dict]:
    """runner.py --phase c sending every queued delivery to a file outbox: (seconds, peak RSS MB, counts)."""
    outbox = ctx.workdir / f"runner-outbox-{deliveries}.jsonl"
    env = {"DATABASE_URL": ctx.url, "ALERTS_SENDER": f"file:{outbox}",
           "ALERTS_MAX_SEND_PER_RUN": str(10 * deliveries + 1000), "ALERTS_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    done = Child([str(ROOT / "runner.py"), "--phase", "c"], env).wait()
    seconds = time.perf_counter() - started
    outbox.unlink(missing_ok=True)
    if done.exit_code != 0:
        raise RuntimeError(f"runner.py --phase c exited {done.exit_code}: {done.stderr[-2000:]}")
    return seconds, done.peak_rss_mb, json.loads(done.stdout.strip().splitlines()[-1])


def runner_memory_cases(ctx: Context) -> list[Result]:
    results: list[Result] = []
    smaller_rss: float | None = None
    for size in ctx.scale.memory_sizes:
        reset_tables(ctx.conn)
        users = min(size, 10_000)
        queued = data.send_queue(ctx.conn, size // users, users)
        settle(ctx.conn, analyze=True)
        seconds, rss, counts = run_runner(ctx, queued)
        sent = int(counts.get("sent", 0))  # type: ignore[call-overload]
        flat = smaller_rss is None or rss <= 1.2 * smaller_rss
        results.append(ctx.result(
            "runner_memory", f"deliveries={queued:,}", sent, seconds,
            "< 150 MB" + ("" if smaller_rss is None else ", <= 1.2x the smaller run"),
            sent == queued and rss < 150 and flat, peak_rss_mb=rss,
            ratio_to_baseline=None if smaller_rss is None else rss / smaller_rss,
            ratio_meaning="peak RSS / peak RSS of the smaller run", counts=counts))
        smaller_rss = rss
    return results
