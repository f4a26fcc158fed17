"""Random passwords, with the characters that break naive URL parsing (# @ / ? : % quotes spaces),
go through every error path of real runner.py processes: an unknown host, a closed port, a
database that does not exist, a malformed URL, key=value connection strings, an SMTP login
refused by a real loopback server, and a run that succeeds into the file outbox. Neither the
password nor any piece of it may appear on stdout, stderr (the logs), in alerts_runs,
last_error or the outbox."""

from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.secrets import mask_text, mask_url
from tests import seed
from tests.conftest import run_runner
from tests.dbtools import with_database
from tests.fakes.smtp_server import FakeSmtpServer

# Pieces of a distinctive alphabet, so that finding one in the output can only be a leak.
PIECES = st.text(alphabet="bcdfghjkmnpqrstvwxzBCDFGHJKMNPQRSTVWXZ", min_size=6, max_size=10)
SEPARATORS = st.sampled_from(["#", "@", "/", "?", ":", "%", "'", " ", "\\", "=", "&", "%40", "@@", "#/?"])


@st.composite
def passwords(draw) -> tuple[str, list[str]]:
    """A password and its pieces (the runs of ordinary characters that must not leak)."""
    pieces = draw(st.lists(PIECES, min_size=2, max_size=3))
    separators = [draw(SEPARATORS) for _ in pieces[1:]]
    password = pieces[0] + "".join(sep + piece for sep, piece in zip(separators, pieces[1:], strict=True))
    return password, pieces


def _leaks(texts: dict[str, str], password: str, pieces: list[str]) -> list[str]:
    return [f"{where}: {piece!r} in {text[:300]!r}"
            for where, text in texts.items() for piece in [password, *pieces] if piece in text]


def _libpq_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture
def queued_email(conn: psycopg.Connection) -> psycopg.Connection:
    seed.population(conn, users=1, events=1)
    conn.execute("SELECT alerts_phase_a()")
    conn.execute("SELECT alerts_phase_b()")
    return conn


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=passwords())
def test_no_password_reaches_any_output(queued_email, db_url, admin_url, tmp_path: Path, secret):
    password, pieces = secret
    conn = queued_email
    conn.execute("UPDATE user_alert_deliveries SET status = 'queued', attempts = 0, next_retry_at = NULL, "
                 "last_error = NULL, sent_at = NULL, provider_message_id = NULL")
    server = psycopg.conninfo.conninfo_to_dict(admin_url)
    host, port = server.get("host") or "127.0.0.1", server.get("port") or "5432"
    database = conn.execute("SELECT current_database()").fetchone()[0]
    outbox = tmp_path / "outbox.jsonl"
    outbox.unlink(missing_ok=True)
    texts: dict[str, str] = {}

    database_urls = {
        "unknown host": f"postgresql://postgres:{password}@no-such-host.invalid:{port}/{database}",
        "closed port": f"postgresql://postgres:{password}@{host}:1/{database}",
        "missing database": f"postgresql://postgres:{password}@{host}:{port}/no_such_database_here",
        "malformed port": f"postgresql://postgres:{password}@{host}:port/{database}",
        "key=value closed port": (f"host={host} port=1 dbname={database} user=postgres "
                                  f"password={_libpq_quoted(password)}"),
        "key=value bare": f"host={host} port=1 password={password}",
    }
    for path, url in database_urls.items():
        result = run_runner(url, "--phase", "a", timeout=60)
        assert result.returncode in (1, 2), (path, result.returncode)
        texts[f"{path} stdout"], texts[f"{path} stderr"] = result.stdout, result.stderr

    # A run that works, the password in the URL (trust authentication ignores it), into the outbox.
    working_url = with_database(admin_url, database).replace("postgres@", f"postgres:{quote(password, safe='')}@", 1)
    result = run_runner(working_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    texts["working run stdout"], texts["working run stderr"] = result.stdout, result.stderr
    texts["outbox"] = outbox.read_text(encoding="utf-8")
    assert texts["outbox"], "the working run sent nothing"

    # An SMTP login refused by a real server: the password goes over the wire, never into a record.
    conn.execute("UPDATE user_alert_deliveries SET status = 'queued', next_retry_at = NULL, sent_at = NULL, "
                 "provider_message_id = NULL, last_error = NULL")
    with FakeSmtpServer(users={"alerts": "the-right-one"}) as smtp:
        env = {"SMTP_URL": f"smtp://alerts:{password}@127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com"}
        result = run_runner(db_url, "--phase", "c", env=env)
        assert smtp.handler.auth_attempts, result.stderr  # the login was really refused
    texts["smtp stdout"], texts["smtp stderr"] = result.stdout, result.stderr
    (texts["last_error"],) = conn.execute(
        "SELECT coalesce(string_agg(last_error, ' | '), '') FROM user_alert_deliveries").fetchone()
    assert "refused" in texts["last_error"], texts["last_error"]
    (texts["alerts_runs"],) = conn.execute(
        "SELECT coalesce(string_agg(coalesce(error, '') || ' ' || coalesce(counts::text, ''), ' | '), '') "
        "FROM alerts_runs").fetchone()

    leaks = _leaks(texts, password, pieces)
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://postgres:s3cr#et@host/db", "postgresql://postgres:***@host/db"),
    ("postgresql://postgres:p@ss@host/db", "postgresql://postgres:***@host/db"),
    ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:pa?ss@h/db", "postgresql://u:***@h/db"),
    ("host=h password=hunter2 dbname=x", "host=h password=*** dbname=x"),
    ("host=h password='hun ter2' dbname=x", "host=h password=*** dbname=x"),
    ("smtp://u:pa/ss@host:587", "smtp://u:***@host:587"),
    ("postgresql://alerts@db.example:5432/app", "postgresql://alerts@db.example:5432/app"),
    ("postgresql://h/db?password=hunter2&sslmode=require", "postgresql://h/db?password=***&sslmode=require"),
])
def test_mask_url_reads_passwords_as_libpq_and_users_do(url, shown):
    assert mask_url(url) == shown


def test_pieces_of_a_known_secret_are_masked_too():
    assert mask_text('could not translate host name "ghijkl@127.0.0.1"', "abcdef@ghijkl") == \
        'could not translate host name "***@127.0.0.1"'
