"""bench/gateway: what the gateway costs on an authenticated read.

Starts a real PostgreSQL and NATS, `python -m gameplane.players` and `python -m gameplane.gateway`
as their own processes, registers and logs in a player, then drives `GET /v1/players/me`
  - through the gateway (player JWT), and
  - directly against players (the service token + X-Player-Id the gateway would send),
alternating the two in rounds so background noise on the machine hits both alike.

Two measurements per target:
  - throughput: requests/s with `BENCH_CONCURRENCY` (default 16) keep-alive connections in a
    closed loop (at saturation latency is just queueing, so it is reported on a detail line only);
  - latency: p50/p99 with one connection, one request at a time (the time the extra hop adds to
    a request when nothing queues).

The load generator is a bare asyncio protocol (pre-built request bytes, minimal response
parsing) on uvloop, so it takes little of the two cores it shares with what it measures.

Env: BENCH_SECONDS (default 20: total measuring time, split between targets and phases),
BENCH_CONCURRENCY (default 16). Last line:
RESULT gateway gw_rps=... direct_rps=... ratio=... gw_p50_ms=... direct_p50_ms=... added_p50_ms=...
       gw_p99_ms=... direct_p99_ms=...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_seconds, infra, log, percentile, result_line

from gameplane.devtools.identities import Identities
from gameplane.devtools.infra import free_port
from gameplane.kit.auth import issue_service_token

HOST = "127.0.0.1"
IDS = Identities.generate(("gateway", "players"))
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


# --- load generator ---------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def merge(self, other: Stats) -> None:
        self.latencies.extend(other.latencies)
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.elapsed += other.elapsed

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies, p / 100) * 1000


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending the same request back to back until `stop_at`."""

    def __init__(self, request: bytes, stats: Stats, stop_at: float, done: asyncio.Future[None]) -> None:
        self.request = request
        self.stats = stats
        self.stop_at = stop_at
        self.done = done
        self.buf = b""
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is no subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        m = _CONTENT_LENGTH.search(self.buf, 0, end + 2)
        if m is None:
            self._fail(RuntimeError(f"response without content-length: {self.buf[:300]!r}"))
            return
        total = end + 4 + int(m.group(1))
        if len(self.buf) < total:
            return
        now = time.perf_counter()
        status = int(self.buf[9:12])
        self.buf = self.buf[total:]
        if status == 200:
            self.stats.latencies.append(now - self.sent)
        else:
            self.stats.errors[status] = self.stats.errors.get(status, 0) + 1
        if now < self.stop_at:
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(exc or RuntimeError("server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


def build_request(port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def drive(port: int, request: bytes, seconds: float, concurrency: int) -> Stats:
    loop = asyncio.get_running_loop()
    stats = Stats()
    stop_at = time.perf_counter() + seconds
    futures: list[asyncio.Future[None]] = []
    start = time.perf_counter()
    for _ in range(concurrency):
        fut: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda f=fut: _Conn(request, stats, stop_at, f), HOST, port)
        futures.append(fut)
    # A stalled connection must fail the bench, not hang it.
    await asyncio.wait_for(asyncio.gather(*futures), seconds + 30)
    stats.elapsed = time.perf_counter() - start
    return stats


# --- processes ---------------------------------------------------------------------------------


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def service(module: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def post_json(url: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


# --- the bench --------------------------------------------------------------------------------


def main() -> None:
    seconds = bench_seconds(20.0)
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp, infra(Path(tmp)) as (pg, nats):
        pg.create_database("gp_players")
        run(Path(tmp), pg.dsn("gp_players"), nats.url, seconds, concurrency)


def run(root: Path, dsn: str, nats_url: str, seconds: float, concurrency: int) -> None:
    players_port, gateway_port = free_port(), free_port()
    players_url, gateway_url = f"http://{HOST}:{players_port}", f"http://{HOST}:{gateway_port}"
    common = {"HOST": HOST, "LOG_LEVEL": "WARNING", "LOG_JSON": "true"}
    players_env = {**IDS.env("players"), **{f"GP_PLAYERS_{k}": v for k, v in {
        **common, "PORT": str(players_port), "DATABASE_URL": dsn, "NATS_URL": nats_url}.items()}}
    gateway_env = {**IDS.env("gateway"), **{f"GP_GATEWAY_{k}": v for k, v in {
        **common, "PORT": str(gateway_port), "ENDPOINTS": json.dumps({"players": players_url}),
        # limits stay on (their cost is part of the hot path) but far above what one player does here
        "RATE_LIMIT_IP_RATE": "1000000", "RATE_LIMIT_IP_BURST": "1000000",
        "RATE_LIMIT_PLAYER_RATE": "1000000", "RATE_LIMIT_PLAYER_BURST": "1000000"}.items()}}
    with service("gameplane.players", players_env, root / "players.log") as players, \
            service("gameplane.gateway", gateway_env, root / "gateway.log") as gateway:
        wait_ready(players_url, players, root / "players.log")
        wait_ready(gateway_url, gateway, root / "gateway.log")
        email = f"bench-{os.getpid()}@example.com"
        password = "bench-Gateway-password-42"
        post_json(gateway_url + "/v1/players/register", {
            "email": email, "password": password, "date_of_birth": "1990-01-01", "country": "GB",
            "currency": "GBP"})
        tokens = post_json(gateway_url + "/v1/players/login", {"email": email, "password": password})
        access, player_id = str(tokens["access_token"]), str(tokens["player_id"])
        # The service token lives for the whole run, like the gateway's cached one would be renewed.
        service_token = issue_service_token(IDS.key("gateway"), "gateway", "players", ttl=int(seconds) + 600)
        requests = {
            "gateway": (gateway_port, build_request(gateway_port, "/v1/players/me",
                                                    {"Authorization": f"Bearer {access}"})),
            "direct": (players_port, build_request(players_port, "/v1/players/me",
                                                   {"Authorization": f"Bearer {service_token}",
                                                    "X-Player-Id": player_id})),
        }
        result = asyncio.run(measure(requests, seconds, concurrency))
    report(result, concurrency)


async def measure(requests: dict[str, tuple[int, bytes]], seconds: float, concurrency: int
                  ) -> dict[str, dict[str, Stats]]:
    for port, request in requests.values():  # warm pools, caches and the JIT-less interpreter alike
        await drive(port, request, 1.0, concurrency)
    out: dict[str, dict[str, Stats]] = {name: {"load": Stats(), "single": Stats()} for name in requests}
    # Many short alternating rounds: whatever else the machine is doing falls on both targets alike.
    rounds = max(2, int(seconds // 5))
    phase = seconds / (len(requests) * rounds * 2)
    for _ in range(rounds):
        for name, (port, request) in requests.items():
            out[name]["load"].merge(await drive(port, request, phase, concurrency))
            out[name]["single"].merge(await drive(port, request, phase, 1))
    return out


def report(result: dict[str, dict[str, Stats]], concurrency: int) -> None:
    gw, direct = result["gateway"], result["direct"]
    for name, phases in result.items():
        for phase, stats in phases.items():
            errors = f" errors={stats.errors}" if stats.errors else ""
            log(f"{name:8s} {phase:6s} c={concurrency if phase == 'load' else 1:<3d} "
                f"rps={stats.rps:8.1f} p50={stats.pct(50):7.2f}ms p99={stats.pct(99):7.2f}ms "
                f"n={len(stats.latencies)}{errors}")
    if any(s.errors for phases in result.values() for s in phases.values()):
        raise SystemExit("non-200 answers during the bench: see above")
    gw_p50, direct_p50 = gw["single"].pct(50), direct["single"].pct(50)
    result_line("gateway", gw_rps=round(gw["load"].rps, 1), direct_rps=round(direct["load"].rps, 1),
                ratio=gw["load"].rps / direct["load"].rps, gw_p50_ms=gw_p50, direct_p50_ms=direct_p50,
                added_p50_ms=gw_p50 - direct_p50, gw_p99_ms=gw["single"].pct(99),
                direct_p99_ms=direct["single"].pct(99))


if __name__ == "__main__":
    # SIGTERM (a CI timeout, `timeout`) unwinds like Ctrl-C, so the servers started above are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    main()
