"""Helpers shared by the images-tier tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
SIGTERM_BOUND_S = 5.0  # the charts' grace period is 30 s: a pod must be gone well before


from hack import images  # noqa: E402  (after REPO: the one module instance)


@dataclass
class Session:
    daemon: Any = None
    built: dict[str, Any] = field(default_factory=dict)  # image key -> images.Built
    build_seconds: float = 0.0
    unavailable: str | None = None
    error: str | None = None
    report: list[str] = field(default_factory=list)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


STATE = Session()


def note(line: str) -> None:
    """A measurement for the summary at the end of the run (and the test's own output)."""
    print(line)
    STATE.report.append(line)


class Docker:
    """The Docker CLI against the tier's private engine."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([images.docker_cli(), *args], env=self.daemon.env(), capture_output=True, text=True,
                           timeout=timeout)  # fmt: skip
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def feed(self, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
        """A docker command with `data` on its standard input."""
        return subprocess.run([images.docker_cli(), *args], env=self.daemon.env(), input=data, capture_output=True,
                              timeout=120)  # fmt: skip

    def run(
        self, image: str, *args: str, opts: tuple[str, ...] = (), check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A one-off container, removed afterwards; no network unless `opts` say otherwise."""
        net = () if any(o.startswith("--network") for o in opts) else ("--network", "none")
        return self("run", "--rm", *net, *opts, image, *args, check=check)

    def inspect(self, ref: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self("image", "inspect", ref).stdout)
        return data[0]

    @contextlib.contextmanager
    def container(self, image: str, *args: str, opts: tuple[str, ...] = ()) -> Iterator[str]:
        """A detached container (host network unless `opts` choose one), always removed afterwards."""
        net = () if any(o.startswith("--network") for o in opts) else ("--network", "host")
        cid = self("run", "--detach", *net, *opts, image, *args).stdout.strip()
        try:
            yield cid
        finally:
            self("rm", "--force", "--volumes", cid, check=False)

    def init_command(self, cid: str) -> list[str]:
        """The command line of the container's PID 1, read from the host's /proc."""
        pid = int(self("inspect", "--format", "{{.State.Pid}}", cid).stdout)
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")

    def logs(self, cid: str) -> str:
        r = self("logs", cid, check=False)
        return r.stdout + r.stderr

    def stop_seconds(self, cid: str, grace: int = 60) -> tuple[float, int]:
        """`docker stop` with a long grace period: seconds from SIGTERM (or STOPSIGNAL) to exit, exit code."""
        start = time.monotonic()
        self("stop", "--time", str(grace), cid, timeout=grace + 30)
        took = time.monotonic() - start
        state = json.loads(self("inspect", "--format", "{{json .State}}", cid).stdout)
        return took, int(state["ExitCode"])


def free_port() -> int:
    """A free port below the ephemeral range (containers use the host's network)."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0,
             logs: Callable[[], str] | None = None) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # not up yet: poll again
            last = e
        time.sleep(0.2)
    extra = f"\n--- logs ---\n{logs()}" if logs else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){extra}")


LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.requires or [] for d in m.distributions()}))"
)


def distributions(docker: Docker, tag: str, entrypoint: str = "python") -> dict[str, list[str]]:
    out = docker.run(tag, "-c", LIST_DISTRIBUTIONS, opts=("--entrypoint", entrypoint)).stdout
    data: dict[str, list[str]] = json.loads(out)
    return {str(canonicalize_name(k)): v for k, v in data.items()}


def closure(dists: dict[str, list[str]], roots: list[str]) -> set[str]:
    """Names of the distributions `roots` require, transitively (extras and markers honoured)."""
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = str(canonicalize_name(req.name))
        found.add(name)
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for dep in map(Requirement, dists.get(name, [])):
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append(Requirement(f"{dep.name}[{','.join(dep.extras)}]" if dep.extras else dep.name))
    return found
