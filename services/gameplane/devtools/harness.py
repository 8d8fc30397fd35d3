"""Drive a `gameplane up` subprocess from tests and benches.

`launch()` starts the command, waits for its `GAMEPLANE READY {json}` line and returns a
`Platform`: the URLs, the supervisor's per-service state (pids.json), controls to crash, hold
down and release a service, and `shutdown()`, which fails if any process of the run survives.
No pytest here: the system-tier conftest and bench/ both build on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

from gameplane.cli.registry import PORT_OFFSETS
from gameplane.cli.up import READY_MARKER
from gameplane.devtools.identities import FILE_NAME, Identities
from gameplane.devtools.infra import free_port_block

READY_TIMEOUT = float(os.environ.get("GAMEPLANE_READY_TIMEOUT", "90"))


class PlatformError(AssertionError):
    """The platform did not start, stop or reach a state in time (an AssertionError for pytest)."""


class ServiceNotBuilt(LookupError):
    """The service is not part of this run (its package has no __main__ yet, or --only)."""


@dataclass
class Platform:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    stdout_path: Path
    info: dict[str, object] = field(default_factory=dict)
    seen_pids: set[int] = field(default_factory=set)

    # -- addresses ----------------------------------------------------------------------------

    @property
    def gateway(self) -> str:
        url = self.info.get("gateway")
        if not url:
            raise ServiceNotBuilt("gateway")
        return str(url)

    @property
    def urls(self) -> dict[str, str]:
        services = self.info["services"]
        assert isinstance(services, dict)
        return {str(k): str(v) for k, v in services.items()}

    def url(self, service: str) -> str:
        if service not in self.urls:
            raise ServiceNotBuilt(service)
        return self.urls[service]

    # -- state ----------------------------------------------------------------------------------

    def identities(self) -> Identities:
        """The run's service keys (`gameplane up` writes them to its data dir, mode 0600): sign as
        payments or the back office where those are not running yet."""
        return Identities.load(self.data_dir / FILE_NAME)

    def state(self) -> dict[str, dict[str, object]]:
        """Per-service state from the supervisor's pids.json (state, pid, restarts)."""
        data = json.loads((self.data_dir / "pids.json").read_text())
        self._remember(data)
        return dict(data["services"])

    def log(self, service: str) -> str:
        path = self.data_dir / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_state(self, service: str, state: str, timeout: float = 60.0, not_pid: int | None = None) -> None:
        """Wait until `service` is in `state` (with `not_pid`: in a process other than that one)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.state()[service]
            if entry["state"] == state and (not_pid is None or entry["pid"] != not_pid):
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"{service} not {state} after {timeout}s:\n{self.log(service)[-3000:]}")
            time.sleep(0.1)

    # -- control --------------------------------------------------------------------------------

    def stop_service(self, service: str, timeout: float = 30.0) -> None:
        """Hold `service` down (the supervisor stops it and does not restart it)."""
        (self.data_dir / "hold" / service).touch()
        self.wait_state(service, "held", timeout)

    def start_service(self, service: str, timeout: float = 60.0) -> None:
        (self.data_dir / "hold" / service).unlink(missing_ok=True)
        self.wait_state(service, "ready", timeout)

    def kill_service(self, service: str, wait_restart: bool = True, timeout: float = 60.0) -> int:
        """Crash `service` (SIGKILL to its process group) and, by default, wait until the
        supervisor has it ready again in a new process. Returns the killed pid."""
        pid = self.state()[service]["pid"]
        assert isinstance(pid, int)
        os.killpg(pid, signal.SIGKILL)
        if wait_restart:
            self.wait_state(service, "ready", timeout, not_pid=pid)
        return pid

    def shutdown(self, timeout: float = 60.0, sig: int = signal.SIGINT) -> int:
        """Send `sig` (Ctrl-C), wait for exit, and assert that no process of the platform survived."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.state()  # the latest pids (services may have been restarted)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_groups(self.seen_pids | {self.proc.pid})
                self.proc.kill()
                raise PlatformError(f"gameplane up did not stop within {timeout}s:\n{self.stdout()[-3000:]}")
        survivors = surviving(self.seen_pids)
        if survivors:
            kill_groups(self.seen_pids)
            raise PlatformError(f"processes survived `gameplane up`: {survivors}")
        return self.proc.returncode

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def _remember(self, data: dict[str, object]) -> None:
        for key in ("supervisor", "postgres", "nats"):
            if isinstance(data.get(key), int):
                self.seen_pids.add(int(data[key]))  # type: ignore[arg-type]
        services = data.get("services", {})
        assert isinstance(services, dict)
        for entry in services.values():
            pid = entry.get("pid") if isinstance(entry, dict) else entry
            if isinstance(pid, int):
                self.seen_pids.add(pid)


def surviving(pids: set[int]) -> list[str]:
    """Running (non-zombie) processes that are one of `pids` or in a process group led by one."""
    found = []
    for proc in psutil.process_iter(["status", "cmdline"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.pid in pids or os.getpgid(proc.pid) in pids:
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:200]}")
        except (OSError, psutil.Error):
            continue
    return found


def kill_groups(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


P = TypeVar("P", bound=Platform)


def launch(
    data_dir: Path,
    *,
    cls: type[P] = Platform,  # type: ignore[assignment]
    argv: list[str] | None = None,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> P:
    """Run `gameplane up --data-dir <data_dir> --base-port <free>` (or `argv ... up ...`) and
    return once it printed its READY line; raise PlatformError (with logs) if it never does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base_port = free_port_block(PORT_OFFSETS)
    command = argv or [sys.executable, "-m", "gameplane.cli"]
    command = [*command, "up", "--data-dir", str(data_dir), "--base-port", str(base_port), *(extra_args or [])]
    stdout_path = data_dir / "up.out"
    with open(stdout_path, "wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    platform = cls(proc=proc, data_dir=data_dir, stdout_path=stdout_path)
    platform.seen_pids.add(proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        for line in platform.stdout().splitlines():
            if line.startswith(READY_MARKER + " "):
                platform.info = json.loads(line[len(READY_MARKER) + 1:])
                pids = platform.info["pids"]
                assert isinstance(pids, dict)
                platform._remember(pids)
                return platform
        failed = proc.poll() is not None
        if failed or time.monotonic() > deadline:
            if not failed:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    platform.state()  # learn the pids, in case it has to be killed
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    kill_groups(platform.seen_pids)
                    proc.kill()
            raise PlatformError(f"gameplane up {'exited' if failed else 'not ready'} "
                                f"(rc={proc.returncode}):\n{dump(platform)}")
        time.sleep(0.1)


def dump(platform: Platform) -> str:
    """The command's output and the tail of every log, for failure messages."""
    parts = [f"--- stdout\n{platform.stdout()[-5000:]}"]
    for log in sorted((platform.data_dir / "logs").glob("*.log")):
        parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)
