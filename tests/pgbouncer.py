"""A real PgBouncer (Debian's package) in transaction mode on a free loopback port, in front of
the test server: the pooler users put between cron and PostgreSQL."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.fakes import free_port

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


def _binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        pytest.fail("pgbouncer is not installed: apt-get install pgbouncer (scripts/ensure_system_packages.sh)",
                    pytrace=False)
    return found


@contextmanager
def pgbouncer(server_url: str, pool_size: int = 4) -> Iterator[str]:
    """Yields server_url rewritten to go through PgBouncer (same user and database)."""
    parts = urlsplit(server_url)
    listen_port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="alerts-pgbouncer-"))
    user = parts.username or "postgres"
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(CONFIG.format(
        host=parts.hostname or "127.0.0.1", port=parts.port or 5432, listen_port=listen_port,
        directory=directory, pool_size=pool_size))
    command = [_binary(), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        owner = pwd.getpwnam("postgres")
        for path in [directory, *directory.iterdir()]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(listen_port, process, directory)
        netloc = f"{parts.username or ''}{'@' if parts.username else ''}127.0.0.1:{listen_port}"
        yield urlunsplit(parts._replace(netloc=netloc))
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[str], directory: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (directory / "pgbouncer.log")
            raise RuntimeError(f"pgbouncer exited: {process.stdout.read() if process.stdout else ''} "
                               f"{log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("pgbouncer did not start listening within 15 s")
