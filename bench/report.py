"""One Result per measured row; the table on stdout and the JSON file."""

import json
import os
import platform
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path

CASES = ("phase_b_fanout", "phase_b_rerun", "phase_c_send", "claim_growth", "phase_a", "history_reads", "runner_memory",
         "watch_latency", "watch_faults", "watch_overlap",
         "provider_email", "provider_telegram", "provider_email_451", "provider_split",
         "frozen_sender", "statement_timeout", "sender_processes")


@dataclass
class Result:
    case: str
    variant: str
    scale: str
    rows: int
    seconds: float
    target: str
    met: bool | None  # None: reported for comparison, no target
    baseline_seconds: float | None = None
    ratio_to_baseline: float | None = None
    peak_rss_mb: float | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.seconds > 0 else None

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "rows_per_s": self.rows_per_s}


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else float("inf")


def own_peak_rss_mb() -> float:
    """Peak RSS of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    header = ("case", "variant", "scale", "rows", "seconds", "rows/s", "baseline s", "ratio", "RSS MB",
              "target", "result")
    lines = [header] + [
        (r.case, r.variant, r.scale, f"{r.rows:,}", f"{r.seconds:.4f}", _fmt(r.rows_per_s, ",.0f"),
         _fmt(r.baseline_seconds, ".4f"), _fmt(r.ratio_to_baseline, ".3f"), _fmt(r.peak_rss_mb, ".1f"),
         r.target, "-" if r.met is None else "pass" if r.met else "FAIL")
        for r in results
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def machine() -> dict[str, object]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def write_json(path: Path, meta: dict[str, object], results: list[Result]) -> None:
    document = {**meta, "machine": machine(), "bench_peak_rss_mb": own_peak_rss_mb(),
                "all_met": all(r.met is not False for r in results), "results": [r.as_json() for r in results]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
