"""DATABASE_URL checked before anything connects: a libpq connection string (URI or key=value)
whose ports are numbers, or a UsageError (exit 2) with one masked line saying what to fix."""

from psycopg import conninfo

from alerts.errors import UsageError
from alerts.secrets import is_libpq_string, mask_text, mask_url, passwords_in

EXAMPLE = "postgresql://user:password@host:5432/dbname"
ENCODE_HINT = "percent-encode @ / ? # % in the password (%40 %2F %3F %23 %25)"


def validate_database_url(url: str) -> str:
    """url itself when libpq can use it; UsageError naming the (masked) problem otherwise."""
    if not url:
        raise UsageError(f"DATABASE_URL is not set: export DATABASE_URL={EXAMPLE}")
    shown = mask_url(url)
    if not is_libpq_string(url):
        raise UsageError(f"DATABASE_URL={shown} is not a PostgreSQL connection string: use {EXAMPLE} "
                         "or key=value pairs (host=... dbname=...)")
    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception as error:  # psycopg.ProgrammingError; its text may quote a piece of the password
        reason = mask_text(" ".join(str(error).split()), *passwords_in(url))
        raise UsageError(f"DATABASE_URL={shown} is not a valid PostgreSQL connection string ({reason}): "
                         f"use {EXAMPLE}; {ENCODE_HINT}") from None
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise UsageError(f"DATABASE_URL={shown}: the port is not a number between 1 and 65535; "
                             f"use {EXAMPLE}, and {ENCODE_HINT}")
    if any("@" in str(params.get(key) or "") for key in ("host", "hostaddr", "dbname")):
        raise UsageError(f"DATABASE_URL={shown}: an '@' follows the user information; {ENCODE_HINT}")
    return url
