"""`gameplane up` end to end with stand-in services, independent of which real services exist.

A wrapper swaps the service table for two tiny stdlib services generated here; everything else
(Postgres, NATS, databases, env, supervisor, signals, READY line, pid file) is the real command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest

from gameplane.cli.registry import PORT_OFFSETS
from gameplane.devtools.harness import surviving
from gameplane.devtools.infra import free_port_block
from gameplane.kit.keys import KeySet, SigningKey

FAKE_MAIN = textwrap.dedent("""
    import http.server, json, os, socket
    name = __spec__.parent.removeprefix("gpfake_")
    prefix = f"GP_{name.upper()}_"
    env = {k[len(prefix):]: v for k, v in os.environ.items() if k.startswith(prefix)}

    def reachable(url):
        host, port = url.split("@")[-1].split("//")[-1].split("/")[0].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=1).close()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/readyz":
                reachable(env["NATS_URL"])
                if "DATABASE_URL" in env:
                    reachable(env["DATABASE_URL"])
            body = json.dumps(env).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer((env["HOST"], int(env["PORT"])), Handler).serve_forever()
""")

# A service that never gets ready: it dies at once, every time.
BROKEN_MAIN = 'raise SystemExit("gamma: cannot start, broken on purpose")\n'

WRAPPER = textwrap.dedent("""
    import os
    from gameplane.cli import registry
    # GPFAKE_SERVICES="alpha:db,beta": the service table of this run
    registry.SERVICES = tuple(
        registry.Service(name, f"gpfake_{name}", i, database=flag == "db", built=True)
        for i, (name, _, flag) in enumerate(e.partition(":") for e in os.environ["GPFAKE_SERVICES"].split(","))
    )
    from gameplane.cli.main import app
    app(prog_name="gameplane")
""")


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "fakes"
    for name, main in (("alpha", FAKE_MAIN), ("beta", FAKE_MAIN), ("gamma", BROKEN_MAIN)):
        pkg = root / f"gpfake_{name}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "__main__.py").write_text(main)
    return {"argv": [sys.executable, "-c", WRAPPER],
            "env": {"PYTHONPATH": str(root), "GPFAKE_SERVICES": "alpha:db,beta"}}


def secrets_of(path: Path) -> tuple[int, dict[str, Any]]:
    """The file's permission bits and content."""
    return path.stat().st_mode & 0o777, json.loads(path.read_text())


def get(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


async def test_up_runs_supervises_and_stops_services(
    launch_platform: Callable[..., Any], fakes: dict[str, Any]
) -> None:
    platform = launch_platform(**fakes)
    info = platform.info
    assert info["gateway"] is None
    assert set(info["services"]) == {"alpha", "beta"}
    assert set(info["databases"]) == {"alpha"}

    alpha, beta = get(platform.url("alpha") + "/env"), get(platform.url("beta") + "/env")
    assert alpha["DATABASE_URL"] == info["databases"]["alpha"]
    assert alpha["DATABASE_URL"].startswith("postgresql+asyncpg://") and alpha["DATABASE_URL"].endswith("/gp_alpha")
    assert "DATABASE_URL" not in beta
    assert alpha["NATS_URL"] == beta["NATS_URL"] == info["nats"]
    assert json.loads(alpha["ENDPOINTS"]) == info["services"]
    assert alpha["PORT"] == info["services"]["alpha"].rsplit(":", 1)[1]
    assert alpha["HOST"] == "127.0.0.1" and alpha["LOG_JSON"] == "true"
    # each service its own private key; every service the same public key set, holding both
    assert alpha["SERVICE_KEY"] != beta["SERVICE_KEY"] and "PRIVATE KEY" in alpha["SERVICE_KEY"]
    assert alpha["PUBLIC_KEYS"] == beta["PUBLIC_KEYS"]
    published = KeySet.from_pems(json.loads(alpha["PUBLIC_KEYS"]))
    for name, env in (("alpha", alpha), ("beta", beta)):
        own = SigningKey.from_pem(env["SERVICE_KEY"])
        assert published.keys[own.kid].owner == name
    assert (platform.data_dir / "identities.json").stat().st_mode & 0o077 == 0  # only its user reads it
    # The run's secrets, for the developer and the CLI only: a file no other user can read.
    secrets_file = Path(str(info["secrets_file"]))
    assert secrets_file == platform.data_dir / "secrets.json"
    mode, kept = secrets_of(secrets_file)
    assert mode == 0o600
    assert kept["identities"] == str(platform.data_dir / "identities.json")
    assert kept["databases"]["alpha"] == alpha["DATABASE_URL"] and kept["services"] == info["services"]
    assert len(kept["providers"]["rgs"]["secret"]) >= 32

    conn = await asyncpg.connect(alpha["DATABASE_URL"].replace("+asyncpg", ""))
    assert await conn.fetchval("SELECT current_database()") == "gp_alpha"
    await conn.close()

    # A crash is restarted (new pid), and the other service is untouched.
    beta_pid_before = platform.state()["beta"]["pid"]
    old = platform.kill_service("alpha")
    assert platform.state()["alpha"]["pid"] != old
    assert platform.state()["alpha"]["restarts"] == 1
    assert platform.state()["beta"]["pid"] == beta_pid_before

    # Held down: its port refuses, the other still answers; released: back again.
    platform.stop_service("beta")
    with pytest.raises(urllib.error.URLError):
        get(platform.url("beta") + "/env")
    assert get(platform.url("alpha") + "/env")["PORT"] == alpha["PORT"]
    platform.start_service("beta")
    assert get(platform.url("beta") + "/env")["PORT"] == beta["PORT"]

    assert "starting" in platform.log("alpha")
    out = platform.stdout()
    assert "gameplane is up" in out and info["services"]["alpha"] + "/docs" in out
    assert platform.shutdown() == 0  # also asserts that no process survived


def test_sigterm_stops_everything_cleanly(launch_platform: Callable[..., Any], fakes: dict[str, Any]) -> None:
    platform = launch_platform(**fakes)
    assert platform.shutdown(sig=signal.SIGTERM) == 0
    assert "stopped" in platform.stdout()


def test_up_after_a_killed_run_reaps_its_leftovers(
    launch_platform: Callable[..., Any], fakes: dict[str, Any]
) -> None:
    first = launch_platform(**fakes)
    first.proc.kill()  # kill -9: no chance to stop its children
    first.proc.wait()
    orphans = {first.info["pids"]["nats"], *first.info["pids"]["services"].values()}
    assert all(psutil.pid_exists(pid) for pid in orphans)

    second = launch_platform(data_dir=first.data_dir, **fakes)  # same pid file, same postgres cluster
    assert not surviving(first.seen_pids)
    assert get(second.url("alpha") + "/env")["DATABASE_URL"].endswith("/gp_alpha")
    assert second.shutdown() == 0


def test_service_that_never_gets_ready_fails_the_run_with_its_log(
    tmp_path: Path, fakes: dict[str, Any]
) -> None:
    env = {**os.environ, **fakes["env"], "GPFAKE_SERVICES": "alpha:db,gamma"}
    command = [*fakes["argv"], "up", "--data-dir", str(tmp_path / "run"), "--ready-timeout", "3",
               "--base-port", str(free_port_block(PORT_OFFSETS))]
    res = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 1
    assert "gamma not ready" in res.stdout and "broken on purpose" in res.stdout
    assert "GAMEPLANE READY" not in res.stdout
    state = json.loads((tmp_path / "run" / "pids.json").read_text())
    assert state["services"]["gamma"]["restarts"] >= 1  # it was retried with backoff meanwhile
    assert not surviving({state["postgres"], state["nats"], state["supervisor"]})


def test_up_rejects_unknown_services(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "gameplane.cli", "up", "--data-dir", str(tmp_path), "--only", "nope"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 2
    assert "unknown service" in res.stdout
