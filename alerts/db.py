"""Connections with one-line errors, and the check that the schema is deployed."""

import psycopg

from alerts.errors import AlertsError
from alerts.secrets import mask_text, mask_url, passwords_in

# The functions a run calls; if one is missing the schema was never deployed.
REQUIRED_FUNCTIONS = (
    "alerts_phase_a()",
    "alerts_phase_b()",
    "claim_deliveries(integer)",
    "claim_deliveries(integer,text[])",
    "count_due_deliveries(integer,text[])",
    "mark_deliveries_sent(bigint[],bigint[],text[])",
    "mark_deliveries_failed(bigint[],bigint[],text[])",
    "mark_deliveries_skipped(bigint[],bigint[],text[])",
    "requeue_deliveries(bigint[],bigint[],text[])",
    "release_deliveries(bigint[],bigint[])",
    "reclaim_expired_deliveries()",
    "alerts_retry_delay(integer)",
    "alerts_run_open(text)",
    "alerts_run_close(bigint,text,text,jsonb,text)",
    "alerts_status()",
    "alerts_prune(interval,integer)",
    "alerts_phase_d()",
    "claim_digests(integer,text[])",
    "count_due_digests(integer,text[])",
    "record_digest_outcomes(text,bigint[],bigint[],text[])",
    "reclaim_expired_digests()",
    "alerts_lease_seconds()",
    "alerts_reserve_send_slots(text,text[],double precision,double precision)",
    "alerts_claims_to_skip(text,bigint[],bigint[])",
    "alerts_record_suppressions(text,bigint[],bigint[],text[])",
)


def one_line(error: BaseException) -> str:
    """The first line of an error's message, secrets masked."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return mask_text(text)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection or raise AlertsError naming the (masked) target.

    Never prepares statements (prepare_threshold=None): behind a transaction pooler such as
    PgBouncer in transaction mode, a prepared statement outlives the transaction on the pooler's
    server connection and the next client using it fails ("_pg3_0 already exists")."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, prepare_threshold=None,
                               application_name="alerts_v2_runner")
    except psycopg.Error as error:
        reason = mask_text(one_line(error), *passwords_in(url))
        raise AlertsError(
            f"cannot connect to {mask_url(url)}: {reason} "
            "(check DATABASE_URL and that the server is running)"
        ) from None


def check_schema(conn: psycopg.Connection) -> None:
    """Raise AlertsError if the engine's functions are not deployed in this database."""
    placeholders = ", ".join(["%s"] * len(REQUIRED_FUNCTIONS))
    row = conn.execute(
        f"SELECT array_agg(f) FILTER (WHERE to_regprocedure(f) IS NULL), current_database() "
        f"FROM unnest(ARRAY[{placeholders}]) AS f",
        REQUIRED_FUNCTIONS,
    ).fetchone()
    missing, database = row if row else (None, "?")
    if missing:
        raise AlertsError(
            f"the Alerts v2 schema is not deployed in database {database!r} (missing {missing[0]}): "
            "run `python runner.py --migrate` or `sqitch deploy` first"
        )
