"""Counts of successive calls of one phase, added up into what the run reports."""


def merge_counts(total: dict[str, object], counts: dict[str, object]) -> dict[str, object]:
    """Add up the integer counts of successive calls; the rest is the latest call's."""
    merged = dict(counts)
    for key, value in total.items():
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(counts.get(key), int):
            merged[key] = value + int(counts[key])  # type: ignore[call-overload]
    return merged
