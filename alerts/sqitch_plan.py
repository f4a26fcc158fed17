"""db/migrations/sqitch.plan read as Sqitch reads it: the changes in order, their tags and
dependencies, each change's deploy script (name@tag.sql for a version reworked later) and the ids
Sqitch computes, so `runner.py --migrate` and Sqitch agree on what is deployed.

An id is the SHA-1 of a short text describing the change or tag (project, name, parent change,
planner, date, dependencies, note), as Sqitch's plan format defines it; tests/test_migrations.py
checks every id against `sqitch plan`."""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from alerts.errors import AlertsError

_NAME = r"[^\s@:#\\\[\]]+"
_LINE = re.compile(
    rf"^(?P<tag>@)?(?P<name>{_NAME})\s*"
    r"(?:\[(?P<dependencies>[^\]]*)\]\s*)?"
    r"(?P<planned_at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\s+"
    r"(?P<planner_name>[^<]+?)\s*<(?P<planner_email>[^>]*)>\s*"
    r"(?:#\s*(?P<note>.*))?$")
_PRAGMA = re.compile(r"^%\s*(?P<key>[^=\s]+)\s*=\s*(?P<value>\S+)")


@dataclass(frozen=True)
class Dependency:
    """A name in a change's [brackets]: `other`, `other@tag`, or `!other` for a conflict."""

    text: str

    @property
    def conflicts(self) -> bool:
        return self.text.startswith("!")

    @property
    def name(self) -> str:
        """The dependency as Sqitch writes it in its registry (without the `!`)."""
        return self.text.lstrip("!")


@dataclass
class Tag:
    name: str  # with its @
    planned_at: str
    planner_name: str
    planner_email: str
    note: str
    project: str
    change_id: str = ""

    @property
    def id(self) -> str:
        lines = [f"project {self.project}", f"tag {self.name}", f"change {self.change_id}",
                 f"planner {self.planner_name} <{self.planner_email}>", f"date {self.planned_at}"]
        return _sha1("tag", lines + (["", self.note] if self.note else []))

    @property
    def planned_at_time(self) -> datetime:
        return _utc(self.planned_at)


@dataclass
class Change:
    name: str
    dependencies: list[Dependency]
    planned_at: str
    planner_name: str
    planner_email: str
    note: str
    project: str
    parent_id: str | None
    deploy_script: Path
    tags: list[Tag] = field(default_factory=list)

    @property
    def id(self) -> str:
        requires = [d.name for d in self.dependencies if not d.conflicts]
        conflicts = [d.name for d in self.dependencies if d.conflicts]
        lines = [f"project {self.project}", f"change {self.name}"]
        lines += [f"parent {self.parent_id}"] if self.parent_id else []
        lines += [f"planner {self.planner_name} <{self.planner_email}>", f"date {self.planned_at}"]
        lines += ["requires", *(f"  + {name}" for name in requires)] if requires else []
        lines += ["conflicts", *(f"  - {name}" for name in conflicts)] if conflicts else []
        return _sha1("change", lines + (["", self.note] if self.note else []))

    @property
    def script(self) -> str:
        """The scripts' file name without .sql: the change's name, or name@tag for a version reworked later."""
        return self.deploy_script.stem

    @property
    def superseded(self) -> bool:
        """Whether a later version of the change follows in the plan (this is a name@tag script)."""
        return self.script != self.name

    @property
    def verify_script(self) -> Path:
        return self.deploy_script.parent.parent / "verify" / f"{self.script}.sql"

    @property
    def script_hash(self) -> str | None:
        """SHA-1 of the deploy script's bytes, as Sqitch records it."""
        try:
            return hashlib.sha1(self.deploy_script.read_bytes()).hexdigest()
        except FileNotFoundError:
            return None

    @property
    def planned_at_time(self) -> datetime:
        return _utc(self.planned_at)


def _utc(timestamp: str) -> datetime:
    """A plan's timestamp (2026-12-07T23:15:00Z) as an aware datetime."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _sha1(kind: str, lines: list[str]) -> str:
    content = "\n".join(lines).encode("utf-8")
    return hashlib.sha1(f"{kind} {len(content)}\0".encode() + content).hexdigest()


@dataclass(frozen=True)
class Plan:
    project: str
    changes: list[Change]

    def index_of(self, change_id: str) -> int | None:
        return next((i for i, change in enumerate(self.changes) if change.id == change_id), None)


def read(plan_file: Path) -> Plan:
    """The plan's changes in order, each with its tags. A change reworked later in the plan appears
    once per version; each earlier version runs deploy/name@tag.sql for the first tag between it and
    its next version whose file exists, as Sqitch looks for it; the last version deploy/name.sql."""
    project = ""
    changes: list[Change] = []
    line_numbers: list[int] = []
    for number, raw in enumerate(plan_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        pragma = _PRAGMA.match(line)
        if pragma and pragma["key"] == "project":
            project = pragma["value"]
        if not line or line.startswith(("%", "#")):
            continue
        parsed = _LINE.match(line)
        if parsed is None:
            raise AlertsError(f"{plan_file}:{number}: cannot read this plan line; "
                              "a change is `name [deps] YYYY-MM-DDTHH:MM:SSZ Planner <email> # note`")
        note = (parsed["note"] or "").rstrip()
        if parsed["tag"]:
            if not changes:
                raise AlertsError(f"{plan_file}:{number}: a tag needs a change before it")
            changes[-1].tags.append(Tag(f"@{parsed['name']}", parsed["planned_at"], parsed["planner_name"],
                                        parsed["planner_email"], note, project, changes[-1].id))
            continue
        dependencies = [Dependency(text) for text in (parsed["dependencies"] or "").split()]
        changes.append(Change(parsed["name"], dependencies, parsed["planned_at"], parsed["planner_name"],
                              parsed["planner_email"], note, project, changes[-1].id if changes else None,
                              plan_file.parent / "deploy" / f"{parsed['name']}.sql"))
        line_numbers.append(number)
    for index, change in enumerate(changes):
        later = next((i for i in range(index + 1, len(changes)) if changes[i].name == change.name), None)
        if later is None:
            continue
        # Sqitch's order: the tags nearest the next version first, the change's own tags last.
        between = [tag.name for c in [*changes[later - 1:index:-1], change] for tag in c.tags]
        if not between:
            raise AlertsError(f"{plan_file}:{line_numbers[index]}: change {change.name!r} is reworked later but no "
                              "tag follows it; tag the plan before reworking (sqitch tag)")
        deploy_dir = change.deploy_script.parent
        existing = [tag for tag in between if (deploy_dir / f"{change.name}{tag}.sql").exists()]
        change.deploy_script = deploy_dir / f"{change.name}{(existing or between)[0]}.sql"
    return Plan(project, changes)
