"""A `runner.py --phase c` sending through a loopback SMTP server, started as a real process, for
the tests that act beside a sender mid-batch (freeze it, pause it)."""

import os
import subprocess
import sys
import time

from tests.conftest import ROOT
from tests.fakes.smtp_server import FakeSmtpServer


def smtp_env(smtp: FakeSmtpServer, **extra: str) -> dict[str, str]:
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_FROM": "alerts@example.com", **extra}


def start_sender(db_url: str, smtp: FakeSmtpServer, in_flight: int = 2,
                 after_messages: int = 5) -> subprocess.Popen[str]:
    """Start a sender with in_flight emails at a time; return once the provider has after_messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"DATABASE_URL": db_url, "ALERTS_CONCURRENCY_EMAIL": str(in_flight), **smtp_env(smtp)})
    sender = subprocess.Popen([sys.executable, "runner.py", "--phase", "c"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(smtp.messages) < after_messages:
        assert time.monotonic() < deadline and sender.poll() is None, "the sender never got going"
        time.sleep(0.01)
    return sender
