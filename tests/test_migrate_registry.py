"""`runner.py --migrate` and Sqitch share Sqitch's registry: the same change ids, the same rows,
and each runs only what the other has not deployed, in any order on one database."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import runner
from alerts import migrate, sqitch_plan
from alerts.locks import PHASE_LOCK_NAMES, lock_key
from tests.conftest import ROOT, run_runner
from tests.test_migrations import schema_of, sqitch

# What each tool writes, without when and by whom it was committed.
REGISTRY_QUERIES = {
    "projects": "SELECT project, uri FROM sqitch.projects",
    "releases": "SELECT version FROM sqitch.releases",
    "changes": "SELECT change_id, script_hash, change, project, note, planned_at, planner_name, planner_email "
               "FROM sqitch.changes ORDER BY committed_at",
    "tags": "SELECT tag_id, tag, project, change_id, note, planned_at, planner_name, planner_email "
            "FROM sqitch.tags ORDER BY tag",
    "dependencies": "SELECT change_id, type, dependency, dependency_id FROM sqitch.dependencies ORDER BY 1, 3",
    "events": "SELECT event, change_id, change, project, note, requires, conflicts, tags, planned_at, planner_name, "
              "planner_email FROM sqitch.events ORDER BY committed_at",
}


def registry_of(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in REGISTRY_QUERIES.items()}


def migrate_json(url: str, *args: str, expect: int = 0) -> dict:
    run = run_runner(url, "--migrate", *args)
    assert run.returncode == expect, run.stdout + run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def function_versions(url: str) -> list[tuple]:
    """Each engine function's row version: a deploy script that ran replaced them."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT oid, xmin::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
                            "ORDER BY oid").fetchall()


def test_every_change_and_tag_id_is_the_one_sqitch_computes():
    if shutil.which("sqitch") is None:
        pytest.fail("sqitch is not installed: apt-get install sqitch libdbd-pg-perl", pytrace=False)
    listed = subprocess.run(["sqitch", "plan", "--no-pager", "--format", "format:%H %n"], cwd=ROOT, check=True,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}).stdout
    theirs = [line.split() for line in listed.splitlines() if line and not line.startswith("#")]
    ours = [[change.id, change.name] for change in migrate.read_plan()]
    assert ours == theirs


def test_the_plan_reader_keeps_a_note_and_finds_each_rework_script(tmp_path: Path):
    plan = tmp_path / "sqitch.plan"
    plan.write_text("%project=x\n\nfirst 2026-01-01T00:00:00Z A <a@b> # one\n@v1 2026-01-01T00:00:01Z A <a@b> # tag\n"
                    "second [first !third] 2026-01-01T00:00:02Z A <a@b>\n"
                    "first [first@v1] 2026-01-02T00:00:00Z A <a@b> # reworked\n", encoding="utf-8")
    first, second, again = sqitch_plan.read(plan).changes
    assert [first.script, second.script, again.script] == ["first@v1", "second", "first"]
    assert (first.note, second.note, first.tags[0].note) == ("one", "", "tag")
    assert [(d.name, d.conflicts) for d in second.dependencies] == [("first", False), ("third", True)]
    assert second.parent_id == first.id and again.parent_id == second.id and first.parent_id is None


def test_runner_and_sqitch_write_the_same_registry(empty_db_url, db_url):
    sqitch(empty_db_url, "deploy", "--verify")
    assert registry_of(db_url) == registry_of(empty_db_url)
    assert len(registry_of(db_url)["changes"]) == len(migrate.read_plan())


def test_either_tool_deploys_only_what_the_other_has_not(empty_db_url, db_url):
    # After the runner: Sqitch finds nothing to deploy and verifies everything.
    assert "Nothing to deploy (up-to-date)" in sqitch(db_url, "status").stdout
    sqitch(db_url, "verify")
    # After Sqitch: the runner applies nothing.
    sqitch(empty_db_url, "deploy", "--verify")
    before = function_versions(empty_db_url)
    assert migrate_json(empty_db_url) == {"migrate": "ok", "applied": [], "current": migrate.read_plan()[-1].name}
    assert function_versions(empty_db_url) == before, "an up-to-date database runs no deploy script"
    # Sqitch takes some back; the runner's check lists exactly those and the deploy applies them.
    sqitch(empty_db_url, "revert", "-y", "--to", "@v1.2")
    after_v1_2 = [change.name for change in migrate.read_plan()][-len(_changes_after("@v1.2")):]
    check = migrate_json(empty_db_url, "--check", expect=1)
    assert check["pending"] == after_v1_2 and check["current"] == "message_facts"
    assert migrate_json(empty_db_url)["applied"] == after_v1_2
    assert migrate_json(empty_db_url, "--check") == {"migrate": "check", "pending": [],
                                                     "current": migrate.read_plan()[-1].name}
    assert "Nothing to deploy (up-to-date)" in sqitch(empty_db_url, "status").stdout
    sqitch(empty_db_url, "verify")
    assert registry_of(empty_db_url)["changes"] == registry_of(db_url)["changes"]
    assert schema_of(empty_db_url) == schema_of(db_url)


def _changes_after(tag: str) -> list[str]:
    changes = migrate.read_plan()
    at = next(i for i, change in enumerate(changes) if tag in [t.name for t in change.tags])
    return [change.name for change in changes[at + 1:]]


def test_a_database_deployed_before_the_registry_is_recorded_once_without_taking_anything_back(db_url, conn):
    reference = schema_of(db_url)
    conn.execute("DROP SCHEMA sqitch CASCADE")
    applied = migrate_json(db_url)["applied"]
    assert len(applied) == len(migrate.read_plan())
    assert schema_of(db_url) == reference
    assert "Nothing to deploy (up-to-date)" in sqitch(db_url, "status").stdout


def test_an_up_to_date_migrate_does_not_wait_for_the_phases(db_url):
    """No deploy script, so no pause: it answers while every phase's lock is held elsewhere."""
    with psycopg.connect(db_url) as holder:
        for name in PHASE_LOCK_NAMES.values():
            holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])
        started = time.monotonic()
        assert migrate_json(db_url)["applied"] == []
        assert time.monotonic() - started < 10


def test_a_pending_change_waits_for_a_running_phase_and_gives_up_naming_it(empty_db_url):
    sqitch(empty_db_url, "deploy", "--to", "@v1.2")
    with psycopg.connect(empty_db_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(PHASE_LOCK_NAMES["b"])])
        run = run_runner(empty_db_url, "--migrate", env={"ALERTS_MIGRATE_WAIT_SECONDS": "1"})
    assert run.returncode == 1
    assert "phase B kept its lock (alerts_v2_phase_b) for 1 s, so nothing was deployed" in run.stderr
    assert migrate_json(empty_db_url, "--check", expect=1)["current"] == "message_facts"


def test_a_change_stopped_by_a_lock_timeout_is_tried_again(empty_db_url):
    """A reader keeps alerts_config for longer than the change's lock_timeout (5 s): the first
    try gives up, a later one succeeds once the reader is done."""
    sqitch(empty_db_url, "deploy", "--to", "@v1.2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")} | {"DATABASE_URL": empty_db_url}
    with psycopg.connect(empty_db_url) as reader:
        reader.execute("SELECT * FROM alerts_config")
        deploy = subprocess.Popen([sys.executable, "runner.py", "--migrate"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert deploy.stderr is not None
        before_retry = []
        for line in deploy.stderr:  # the reader is done once the first try has given up
            before_retry.append(line)
            if "trying again" in line:
                break
    out, err = deploy.communicate(timeout=120)
    err = "".join(before_retry) + err
    assert deploy.returncode == 0, err
    assert "migration bounded_statements: canceling statement due to lock timeout" in err
    assert "trying again" in err
    assert json.loads(out)["applied"][0] == "bounded_statements"


@pytest.mark.parametrize(("argv", "says"), [
    (["--check"], "--check goes with --migrate"),
    (["--migrate", "--check", "--phase", "a"], "only reports pending changes"),
])
def test_check_goes_with_migrate_only(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        runner.parse_args(argv)
    assert exit_info.value.code == 2 and says in capsys.readouterr().err
