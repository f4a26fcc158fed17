"""The frame every command-line entry point shares: logging to stderr, SIGTERM as an
interruption, and every failure turned into one line on stderr and an exit code."""

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable

import psycopg

from alerts.db import one_line
from alerts.errors import EXIT_FAILURE, AlertsError
from alerts.failures import classify, describe
from alerts.shutdown import HardStop


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_command(prog: str, args: argparse.Namespace, run: Callable[[argparse.Namespace], int],
                interrupted: str = "interrupted") -> int:
    """Run run(args); never lets a traceback out."""
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("ALERTS_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return run(args)
    except AlertsError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except HardStop as error:
        print(f"{prog}: error: {error}; {interrupted}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: error: {interrupted}", file=sys.stderr)
        return EXIT_FAILURE
    except psycopg.OperationalError as error:  # a timeout, a cancel, a deadlock, the server gone (alerts.failures)
        kind = classify(error)
        print(f"{prog}: error: {describe(error)}", file=sys.stderr)
        return kind.exit_code if kind else EXIT_FAILURE
    except Exception as error:
        print(f"{prog}: error: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
