#!/usr/bin/env python3
"""Freezes a change's scripts before it is reworked: writes deploy/NAME@TAG.sql with every
`\\ir` include inlined as the file is now, and copies revert/ and verify/ to NAME@TAG.sql.

    python scripts/freeze_rework.py claim_deliveries v1.1

Run it after `sqitch tag` (or adding the tag line to sqitch.plan) and before editing the
change's function files; then add the reworked change to the plan and write its new scripts.
"""

import re
import sys
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"
INCLUDE = re.compile(r"^\s*\\ir\s+(?P<path>\S+)\s*$")


def inline(script: Path, name: str, tag: str) -> str:
    lines = [f"-- Deploy alerts_v2:{name}@{tag} (the version tagged {tag}; reworked since, so its included",
             f"-- files are inlined as they were then; revert/{name}.sql restores them)"]
    for raw in script.read_text(encoding="utf-8").splitlines():
        include = INCLUDE.match(raw)
        if raw.startswith(f"-- Deploy alerts_v2:{name}"):
            continue
        if not include:
            lines.append(raw)
            continue
        included = (script.parent / include["path"]).resolve()
        lines.append(f"-- {included.relative_to(MIGRATIONS.parent.parent)} as it was at @{tag} (frozen copy).")
        lines.extend(included.read_text(encoding="utf-8").rstrip("\n").splitlines())
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: freeze_rework.py CHANGE TAG   (e.g. claim_deliveries v1.1)", file=sys.stderr)
        return 2
    name, tag = argv[0], argv[1].lstrip("@")
    deploy = MIGRATIONS / "deploy" / f"{name}.sql"
    if not deploy.exists():
        print(f"freeze_rework.py: no change {name!r}: {deploy} does not exist", file=sys.stderr)
        return 2
    frozen = MIGRATIONS / "deploy" / f"{name}@{tag}.sql"
    frozen.write_text(inline(deploy, name, tag), encoding="utf-8")
    for kind in ("revert", "verify"):
        source = MIGRATIONS / kind / f"{name}.sql"
        (MIGRATIONS / kind / f"{name}@{tag}.sql").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"froze {name} at @{tag}: deploy/, revert/ and verify/{name}@{tag}.sql")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
