"""The failures the runner reports, each with its exit code (alerts.failures: which database failure
gets 5 and which 6)."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3  # stopped by SIGTERM/SIGINT: in-flight sends finished, every outcome recorded
EXIT_CHANNEL_UNAVAILABLE = 4  # a provider was unreachable or asked us to wait: its messages stay queued
EXIT_STATEMENT_STOPPED = 5  # the database stopped a statement: a timeout, a cancel, a deadlock after retries
EXIT_CONNECTION_ENDED = 6  # a database session ended mid-run: connection lost, server restart, terminated


class AlertsError(Exception):
    """A failure with a one-line message that says what to do; exit code 1."""

    exit_code = EXIT_FAILURE


class ChannelUnavailableError(AlertsError):
    """A provider could not take messages this run; they stay queued for the next one; exit code 4."""

    exit_code = EXIT_CHANNEL_UNAVAILABLE


class UsageError(AlertsError):
    """Bad command line or configuration; exit code 2."""

    exit_code = EXIT_USAGE
