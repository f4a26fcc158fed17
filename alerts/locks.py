"""Advisory lock keys, computed exactly as the SQL function alerts_lock_key() does."""

import hashlib

PHASE_LOCK_NAMES = {
    "a": "alerts_v2_phase_a",
    "b": "alerts_v2_phase_b",
    "c": "alerts_v2_phase_c",
    "d": "alerts_v2_phase_d",
}
MIGRATE_LOCK_NAME = "alerts_v2_migrate"


def lock_key(lock_name: str) -> int:
    """The first 8 bytes of sha256(lock_name), read as a signed big-endian bigint."""
    digest = hashlib.sha256(lock_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# Phase C's lock taken in shared mode for the statement's transaction: true unless a session holds
# it exclusively or waits for it (the DBA's pause switch). The key is inlined, not a parameter.
SENDING_OPEN = f"pg_try_advisory_xact_lock_shared({lock_key(PHASE_LOCK_NAMES['c'])})"


def skip_object(phase: str) -> dict[str, object]:
    """What a phase reports when another session holds its lock (CONTRACT.md)."""
    return {"phase": phase, "locked": False, "skipped": True, "reason": "lock_not_acquired"}
