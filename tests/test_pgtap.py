"""Runs every pgTAP file under pgtap/ through pg_prove against a fresh deployed database."""

import shutil
import subprocess
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import ROOT

PGTAP_FILES = sorted((ROOT / "pgtap").glob("*.sql"))


def test_pgtap_files_exist():
    assert PGTAP_FILES, "no pgTAP files under pgtap/"


@pytest.mark.parametrize("path", PGTAP_FILES, ids=[p.name for p in PGTAP_FILES])
def test_pgtap_file(db_url, path):
    if shutil.which("pg_prove") is None:
        pytest.fail("pg_prove is not installed: apt-get install postgresql-15-pgtap "
                    "libtap-parser-sourcehandler-pgtap-perl", pytrace=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    parts = urlsplit(db_url)
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": parts.password or "", "PGHOST": parts.hostname or "",
           "PGPORT": str(parts.port or 5432), "PGUSER": parts.username or "postgres",
           "PGDATABASE": parts.path.lstrip("/")}
    result = subprocess.run(["pg_prove", "--verbose", str(path)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Result: PASS" in result.stdout
