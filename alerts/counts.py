"""Counts of successive calls of one phase, added up into what the run reports."""

from collections.abc import Callable


def merge_counts(total: dict[str, object], counts: dict[str, object]) -> dict[str, object]:
    """Add up the integer counts of successive calls; the rest is the latest call's."""
    merged = dict(counts)
    for key, value in total.items():
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(counts.get(key), int):
            merged[key] = value + int(counts[key])  # type: ignore[call-overload]
    return merged


def while_more(call: Callable[[], dict[str, object]]) -> dict[str, object]:
    """call() again while it answers "more": true (a bounded batch that may have left some), the
    counts added up."""
    total: dict[str, object] = {}
    while True:
        counts = call()
        total = merge_counts(total, counts)
        if counts.get("more") is not True:
            return total
