"""An asyncio process supervisor: start, probe readiness, restart with backoff, stop cleanly.

Every child leads its own process group (a new session), so a Ctrl-C in the terminal reaches
only the supervisor, and stopping a child signals the whole group: whatever it spawned goes too.
A service can be held down on purpose (tests stop one to see the gateway answer 503) by creating
the file `<hold_dir>/<name>`; removing the file starts it again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from gameplane.devtools.infra import group_alive

log = logging.getLogger("gameplane.supervisor")

POLL_S = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]  # the complete environment of the child
    log_path: Path
    ready_url: str | None = None  # GET answering 200 means ready; None: ready once started
    cwd: Path | None = None


class State(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    BACKOFF = "backoff"  # crashed, waiting to restart
    HELD = "held"  # held down by a hold file
    STOPPED = "stopped"


@dataclass
class Backoff:
    """Exponential restart delay that forgives a service once it has stayed healthy a while."""

    initial: float = 0.5
    cap: float = 15.0
    reset_after: float = 30.0
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next_delay(self, healthy_for: float) -> float:
        if healthy_for >= self.reset_after:
            self.current = self.initial
        delay = self.current
        self.current = min(self.cap, self.current * 2)
        return delay


@dataclass
class Child:
    spec: ProcessSpec
    backoff: Backoff
    state: State = State.STOPPED
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    ready_at: float | None = None
    last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _open_log(spec: ProcessSpec) -> BinaryIO:
    """The child's log, appended to across restarts, with a marker line per start."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(spec.log_path, "ab")  # closed by the caller's `with`
    out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(spec.argv)}\n".encode())
    out.flush()
    return out


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        *,
        hold_dir: Path | None = None,
        state_file: Path | None = None,
        extra_state: dict[str, object] | None = None,
        stop_grace: float = 10.0,
        backoff: Callable[[], Backoff] = Backoff,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.children = {s.name: Child(s, backoff()) for s in specs}
        self.hold_dir = hold_dir
        self.state_file = state_file
        self.extra_state = extra_state or {}
        self.stop_grace = stop_grace
        self.on_event = on_event or (lambda name, message: log.info("%s: %s", name, message))
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None

    # -- public -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=1.0)
        if self.hold_dir is not None:
            self.hold_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children.values():
            self._tasks.append(asyncio.create_task(self._run(child), name=f"supervise-{child.spec.name}"))

    def all_ready(self) -> bool:
        return all(c.state is State.READY for c in self.children.values())

    async def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.all_ready():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    def pids(self) -> dict[str, int | None]:
        return {name: c.pid for name, c in self.children.items()}

    def status(self) -> dict[str, dict[str, object]]:
        return {
            name: {"state": c.state.value, "pid": c.pid, "restarts": c.restarts, "last_exit": c.last_exit,
                   "argv": c.spec.argv}
            for name, c in self.children.items()
        }

    async def stop(self, grace: float | None = None) -> None:
        """Stop every child in parallel: SIGTERM to each group, SIGKILL after the grace period.

        Each child's own task does the stopping, so a child being spawned right now is stopped
        too instead of slipping through.
        """
        if grace is not None:
            self.stop_grace = grace
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for child in self.children.values():  # safety net: nothing may outlive `stop`
            if child.proc is not None and group_alive(child.proc.pid):
                await self._terminate(child, 0)
            child.state = State.STOPPED
        if self._http is not None:
            await self._http.aclose()
        self._write_state()

    def kill_now(self) -> None:
        """SIGKILL every child group at once (a second Ctrl-C while stopping)."""
        for child in self.children.values():
            if child.proc is not None and child.proc.returncode is None:
                signal_group(child.proc.pid, signal.SIGKILL)

    # -- one child ------------------------------------------------------------------------------

    def _held(self, name: str) -> bool:
        return self.hold_dir is not None and (self.hold_dir / name).exists()

    async def _run(self, child: Child) -> None:
        name = child.spec.name
        while not self._stopping.is_set():
            if self._held(name):
                self._set_state(child, State.HELD)
                await self._sleep(POLL_S)
                continue
            await self._spawn(child)
            await self._watch(child)
            if self._stopping.is_set():
                return
            if self._held(name):
                self.on_event(name, "held down")
                continue
            healthy_for = time.monotonic() - child.ready_at if child.ready_at is not None else 0.0
            delay = child.backoff.next_delay(healthy_for)
            self._set_state(child, State.BACKOFF)
            self.on_event(name, f"exited with code {child.last_exit}; restarting in {delay:.1f}s")
            await self._sleep(delay)
            child.restarts += 1

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        with _open_log(spec) as out:
            child.proc = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                env=spec.env, cwd=spec.cwd, start_new_session=True)
        child.started_at = time.monotonic()
        child.ready_at = None
        self._set_state(child, State.STARTING)

    async def _watch(self, child: Child) -> None:
        """Return once the process has exited (probing readiness and the hold file meanwhile)."""
        proc = child.proc
        assert proc is not None
        wait = asyncio.ensure_future(proc.wait())
        try:
            while not wait.done():
                if self._stopping.is_set() or self._held(child.spec.name):
                    await self._terminate(child, self.stop_grace)
                    break
                if child.state is State.STARTING and await self._probe(child.spec):
                    child.ready_at = time.monotonic()
                    self._set_state(child, State.READY)
                    self.on_event(child.spec.name, f"ready in {child.ready_at - child.started_at:.1f}s")
                await asyncio.wait([wait], timeout=POLL_S)
            await wait
        except asyncio.CancelledError:
            signal_group(proc.pid, signal.SIGKILL)  # never leave a child behind a cancelled task
            raise
        child.last_exit = proc.returncode
        # The leader is gone; reap anything it left in its group.
        if group_alive(proc.pid):
            signal_group(proc.pid, signal.SIGKILL)
        self._write_state()

    async def _probe(self, spec: ProcessSpec) -> bool:
        if spec.ready_url is None:
            return True
        assert self._http is not None
        try:
            resp = await self._http.get(spec.ready_url)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def _terminate(self, child: Child, grace: float) -> None:
        proc = child.proc
        if proc is None:
            return
        pgid = proc.pid
        if proc.returncode is None:
            signal_group(pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            except TimeoutError:
                self.on_event(child.spec.name, f"did not stop in {grace:.0f}s: killing")
                signal_group(pgid, signal.SIGKILL)
                await proc.wait()
        # Members of the group that ignored SIGTERM or outlived their leader.
        deadline = time.monotonic() + 5
        while group_alive(pgid) and time.monotonic() < deadline:
            signal_group(pgid, signal.SIGKILL)
            await asyncio.sleep(0.02)

    # -- helpers -----------------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _set_state(self, child: Child, state: State) -> None:
        if child.state is not state:
            child.state = state
            self._write_state()

    def _write_state(self) -> None:
        """pids.json: what is running now, for tests (orphan checks) and for cleaning up after
        a supervisor that was killed without stopping its children."""
        if self.state_file is None:
            return
        data = {**self.extra_state, "supervisor": os.getpid(), "services": self.status()}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)
