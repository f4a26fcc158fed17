"""The two kinds of failure the runner reports, each with its exit code."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class AlertsError(Exception):
    """A failure with a one-line message that says what to do; exit code 1."""

    exit_code = EXIT_FAILURE


class UsageError(AlertsError):
    """Bad command line or configuration; exit code 2."""

    exit_code = EXIT_USAGE
