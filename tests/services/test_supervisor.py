"""The process supervisor of `gameplane up`, driven with a tiny stdlib HTTP service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest

from gameplane.cli.supervisor import Backoff, ProcessSpec, State, Supervisor
from gameplane.devtools.infra import free_port

# Answers /readyz, spawns a grandchild (to prove the whole process group goes), exits with 3 on
# /crash, and with IGNORE_TERM=1 ignores SIGTERM (to prove the SIGKILL escalation).
SERVICE = textwrap.dedent("""
    import http.server, os, signal, subprocess, sys
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/crash":
                os._exit(3)
            body = str(grandchild.pid).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


def spec(tmp_path: Path, name: str = "svc", **env: str) -> tuple[ProcessSpec, int]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    port = free_port()
    return ProcessSpec(
        name=name,
        argv=[sys.executable, str(script), str(port)],
        env={**os.environ, **env},
        log_path=tmp_path / "logs" / f"{name}.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    ), port


async def wait_for(predicate: object, timeout: float = 15.0) -> None:
    async def loop() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


def gone(pids: list[int]) -> bool:
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    return not alive


async def grandchild_pid(port: int) -> int:
    async with httpx.AsyncClient() as client:
        return int((await client.get(f"http://127.0.0.1:{port}/")).text)


async def test_ready_then_stop_leaves_no_process(tmp_path: Path) -> None:
    s, port = spec(tmp_path)
    sup = Supervisor([s], state_file=tmp_path / "pids.json")
    await sup.start()
    assert await sup.wait_ready(15)
    pid = sup.pids()["svc"]
    assert pid is not None and str(pid) in (tmp_path / "pids.json").read_text()
    grandchild = await grandchild_pid(port)
    await sup.stop()
    assert gone([pid, grandchild])
    assert sup.children["svc"].state is State.STOPPED


async def test_crashed_service_is_restarted_after_backoff(tmp_path: Path) -> None:
    s, port = spec(tmp_path)
    sup = Supervisor([s], backoff=lambda: Backoff(initial=0.3))
    await sup.start()
    try:
        assert await sup.wait_ready(15)
        first = sup.pids()["svc"]
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://127.0.0.1:{port}/crash")
        await wait_for(lambda: sup.children["svc"].state is State.BACKOFF)
        assert sup.children["svc"].last_exit == 3
        await wait_for(lambda: sup.children["svc"].state is State.READY)
        assert sup.pids()["svc"] not in (None, first)
        assert sup.children["svc"].restarts == 1
        assert "starting" in s.log_path.read_text()
    finally:
        await sup.stop()


async def test_hold_file_keeps_a_service_down_until_removed(tmp_path: Path) -> None:
    s, _ = spec(tmp_path)
    hold = tmp_path / "hold"
    sup = Supervisor([s], hold_dir=hold)
    await sup.start()
    try:
        assert await sup.wait_ready(15)
        pid = sup.pids()["svc"]
        assert pid is not None
        (hold / "svc").touch()
        await wait_for(lambda: sup.children["svc"].state is State.HELD)
        assert gone([pid]) and sup.pids()["svc"] is None
        await asyncio.sleep(0.5)
        assert sup.children["svc"].state is State.HELD and sup.children["svc"].restarts == 0
        (hold / "svc").unlink()
        await wait_for(lambda: sup.children["svc"].state is State.READY)
    finally:
        await sup.stop()


async def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    s, port = spec(tmp_path, IGNORE_TERM="1")
    sup = Supervisor([s], stop_grace=0.5)
    await sup.start()
    assert await sup.wait_ready(15)
    pid = sup.pids()["svc"]
    assert pid is not None
    grandchild = await grandchild_pid(port)
    await asyncio.wait_for(sup.stop(), 10)
    assert sup.children["svc"].last_exit == -signal.SIGKILL
    assert gone([pid, grandchild])


def test_backoff_doubles_up_to_cap_and_resets_after_healthy_run() -> None:
    b = Backoff(initial=0.5, cap=3.0, reset_after=30.0)
    assert [b.next_delay(healthy_for=0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.next_delay(healthy_for=31) == 0.5
    assert b.next_delay(healthy_for=1) == 1.0
