"""Child processes whose own peak RSS is read with wait4(2), and which never outlive the bench."""

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_running: set[subprocess.Popen] = set()


@dataclass
class Finished:
    exit_code: int
    peak_rss_mb: float
    stdout: str
    stderr: str


class Child:
    """A process started from the repository root; stdin a pipe, stdout/stderr temp files."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=child_env(env),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        _running.add(self.proc)

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def wait(self) -> Finished:
        """Reap the child with wait4 to get its own ru_maxrss (KiB on Linux)."""
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        stdout = self.proc.stdout.read().decode()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        _running.discard(self.proc)
        self._err.seek(0)
        stderr = self._err.read().decode(errors="replace")
        return Finished(self.proc.returncode, usage.ru_maxrss / 1024, stdout, stderr)


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def kill_all() -> None:
    """Stop every child still running (on error or interrupt), by its own pid."""
    for proc in list(_running):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _running.discard(proc)
