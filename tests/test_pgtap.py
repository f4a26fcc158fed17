"""Runs every pgTAP file under pgtap/ through pg_prove against a fresh deployed database.
pgTAP comes from the server's extension or, where the server has none, its SQL install script
(tests/pgtap_install.py): a missing pgTAP fails these tests, it never skips them."""

import shutil
import subprocess

import psycopg
import pytest

from tests.conftest import ROOT
from tests.pgtap_install import SCRIPT_SCHEMA, ensure_pgtap, install_script, libpq_env, load_script

PGTAP_FILES = sorted((ROOT / "pgtap").glob("*.sql"))


def test_pgtap_files_exist():
    assert PGTAP_FILES, "no pgTAP files under pgtap/"


@pytest.mark.parametrize("path", PGTAP_FILES, ids=[p.name for p in PGTAP_FILES])
def test_pgtap_file(db_url, path):
    if shutil.which("pg_prove") is None:
        pytest.fail("pg_prove is not installed: apt-get install libtap-parser-sourcehandler-pgtap-perl "
                    "(scripts/ensure_system_packages.sh does)", pytrace=False)
    ensure_pgtap(db_url)
    result = subprocess.run(["pg_prove", "--verbose", str(path)], env=libpq_env(db_url), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, failures(result.stdout) + result.stdout[-2000:] + result.stderr[-2000:]
    assert "Result: PASS" in result.stdout


def failures(tap: str) -> str:
    """The 'not ok' lines of a TAP stream with the diagnostics that follow each."""
    kept: list[str] = []
    for line in tap.splitlines():
        if line.startswith("not ok") or (kept and line.startswith("#") and not kept[-1].startswith("ok")):
            kept.append(line)
        elif kept and not kept[-1].startswith("ok"):
            kept.append("ok")
    return "\n".join(line for line in kept if line != "ok")[:4000] + "\n"


def test_pgtap_loads_from_its_install_script_where_the_server_has_no_extension(empty_db_url):
    """The path the PostgreSQL 18 wheel and Docker images take, also checked where the extension exists."""
    load_script(empty_db_url, install_script(), SCRIPT_SCHEMA)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("SET search_path = public, pgtap")
        conn.execute("SELECT plan(1)")
        row = conn.execute("SELECT ok(true, 'loaded')").fetchone()
        public = conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace").fetchone()
        extension = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'").fetchone()
    assert row == ("ok 1 - loaded",)
    assert public == (0,) and extension == (0,)
