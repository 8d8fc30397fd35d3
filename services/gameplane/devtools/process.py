"""One gameplane service (`python -m gameplane.<service>`) as a real process of its own, for tests
that need what an in-process app cannot give: a SIGKILL mid-load, a graceful SIGTERM as a rolling
update sends it, or an earlier release's code on the PYTHONPATH. The system tests and
gameplane.devtools.releases each had a copy of this class; this is the one they share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from gameplane.devtools.infra import HOST, free_port

LOG_TAIL = 3000  # characters of the service's log quoted when it dies or never gets ready


class ServiceProcess:
    """`python -m gameplane.<service>` in a session of its own (so a signal reaches all it spawned),
    its output appended to `log`. `settings` are the service's GP_<SERVICE>_* variables without the
    prefix, on top of this process's environment; GP_<SERVICE>_PORT is `port` (a free one by
    default). `pythonpath` replaces PYTHONPATH (to run another copy of the code), `cwd` is where it
    runs, `grace` how long stop() waits after SIGTERM before it SIGKILLs."""

    def __init__(self, service: str, settings: Mapping[str, str], log: Path, *, port: int | None = None,
                 pythonpath: Path | None = None, cwd: Path | None = None, grace: float = 15.0) -> None:
        self.service = service
        self.port = free_port() if port is None else port
        self.url = f"http://{HOST}:{self.port}"
        prefix = f"GP_{service.upper()}_"
        self.env = {**os.environ, **{prefix + k.upper(): v for k, v in {**settings, "PORT": str(self.port)}.items()}}
        if pythonpath is not None:
            self.env["PYTHONPATH"] = str(pythonpath)
        self.log = log
        self.cwd = cwd
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL:] if self.log.exists() else "(no log)"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", f"gameplane.{self.service}"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cwd)

    async def ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Until GET /readyz answers 200; fails at once, quoting the log, if the process exits."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as c:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.log_tail()
                try:
                    if (await c.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(interval)
        raise TimeoutError(f"{self.service} did not become ready:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL to the whole process group (a crash), then reap it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a graceful stop, as a rolling update does it), SIGKILL if it lingers past `grace`.
        Does nothing when it never started or has already exited."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
