"""bench/web: the player site under 50 concurrent players — lobby page latency and game launch.

Starts the whole platform (`gameplane up`, every built service and the simulators as `make run`
does), registers WEB_BENCH_PLAYERS (50) players through the gateway and signs each one in through
the site (its CSRF cookie and form, its session cookie), then two phases of the same length:

- lobby: every player loads `GET /lobby`, reads it for WEB_BENCH_THINK_SECONDS (1 s, jittered ±50 %)
  and loads it again: the page the site renders from the player's balance (one gateway call) and
  the jurisdiction's catalogue (kept 5 s by the site). p50/p95/p99 and pages per second. Target
  (issue 18): p95 < 150 ms.
- launch: every player, with WEB_BENCH_LAUNCH_THINK_SECONDS between launches (10 s, jittered ±50 %:
  about 5 launches/s for 50 players, a busy casino's rate — a player launches a game and then
  plays it; with 1 s every player relaunches at once and the chain measures the platform's queue
  at saturation, about 13 launches/s here), does what the browser does between the click on Play and the
  first spin being possible: `POST /games/<id>/launch` (a game session opened through the gateway),
  the redirect to `GET /play/<session>`, its script, then the studio's frame document
  `GET <rgs>/play?token=…` and its script and stylesheet; the session is then ended. Latency of the
  whole chain, p50/p95/p99. Target: p95 < 1 s. The browser's own rendering is not in it (headless
  Chromium on this box would measure the box's CPU starvation, not the site); the test tier runs
  the real browser (tests/browser/test_web_journey.py).

The gateway's per-address rate limit is off for the run (GP_GATEWAY_RATE_LIMIT_IP_RATE=0): every
simulated player comes from 127.0.0.1, where real players each have an address of their own.

Fifty players loading pages back to back with no pause would be 50 requests always in flight: at
saturation that measures the queue (bench/gateway's note), not what a player waits for.

Env: BENCH_SECONDS (default 20, split between the phases), WEB_BENCH_PLAYERS (50),
WEB_BENCH_THINK_SECONDS (1.0), WEB_BENCH_LAUNCH_THINK_SECONDS (10.0).
RESULT web lobby_p95_ms=… launch_p95_ms=… lobby_p50_ms lobby_p99_ms lobby_pages_per_s launch_p50_ms
launch_p99_ms launches launches_per_s errors players think_s launch_think_s
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_seconds, log, percentile, platform, result_line

PASSWORD = "bench-Web-Players-2026"
GAME = "fruit-fives"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Player:
    """One signed-in player's cookies, sent by hand: the site's cookies are Secure (and __Host-),
    which httpx keeps for https only; a browser sends them to http://127.0.0.1 too."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def remember(self, r: httpx.Response) -> None:
        for raw in r.headers.get_list("set-cookie"):
            name, _, rest = raw.partition("=")
            self.cookies[name] = rest.split(";", 1)[0].strip('"')

    def headers(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items() if v)}

    async def get(self, url: str) -> httpx.Response:
        r = await self.client.get(url, headers=self.headers())
        self.remember(r)
        return r

    async def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        r = await self.client.post(url, data={**data, "csrf_token": self.csrf}, headers=self.headers())
        self.remember(r)
        return r

    async def sign_in(self, gateway: str, site: str) -> None:
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        reg = await self.client.post(f"{gateway}/v1/players/register", json={
            "email": email, "password": PASSWORD, "date_of_birth": "1988-02-03", "country": "MT", "currency": "EUR"})
        assert reg.status_code == 201, reg.text
        page = await self.get(f"{site}/login")
        found = CSRF_META.search(page.text)
        assert found, page.text
        self.csrf = found.group(1)
        r = await self.post(f"{site}/login", {"email": email, "password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/lobby", r.text
        page = await self.get(f"{site}/lobby")
        assert page.status_code == 200 and 'class="game"' in page.text, page.text[:500]
        self.csrf = CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]  # new with the session


def think(seconds: float) -> float:
    return seconds * random.uniform(0.5, 1.5)


async def lobby_phase(players: list[Player], site: str, seconds: float, pause: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(p: Player) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            r = await p.get(f"{site}/lobby")
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
            await asyncio.sleep(think(pause))

    await asyncio.gather(*(loop(p) for p in players))
    return latencies, errors


async def launch_phase(players: list[Player], site: str, rgs: str, seconds: float,
                       pause: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    frame_src = re.compile(r'<iframe id="game"[^>]* src="([^"]+)"')

    async def loop(p: Player) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            await asyncio.sleep(think(pause))
            start = time.perf_counter()
            launched = await p.post(f"{site}/games/{GAME}/launch", {})
            if launched.status_code != 303:
                errors += 1
                continue
            play_path = launched.headers["location"]
            page = await p.get(f"{site}{play_path}")
            found = frame_src.search(page.text)
            if page.status_code != 200 or not found:
                errors += 1
                continue
            script = await p.get(f"{site}/static/play.js")
            frame = await p.client.get(found.group(1).replace("&amp;", "&"))
            assets = await asyncio.gather(p.client.get(f"{rgs}/static/slot.js"), p.client.get(f"{rgs}/static/slot.css"))
            if script.status_code != 200 or frame.status_code != 200 or 'id="spin"' not in frame.text \
                    or any(a.status_code != 200 for a in assets):
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)  # the spin button is there: first spin possible
            await p.post(f"{site}{play_path}/end", {})

    await asyncio.gather(*(loop(p) for p in players))
    return latencies, errors


async def run(gateway: str, site: str, rgs: str, count: int, seconds: float,
              pause: float, launch_pause: float) -> dict[str, float | int]:
    limits = httpx.Limits(max_connections=count * 2, max_keepalive_connections=count * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        players = [Player(client) for _ in range(count)]
        for i in range(0, count, 10):  # sign-ups in small waves: argon2 hashing is the slow part
            await asyncio.gather(*(p.sign_in(gateway, site) for p in players[i:i + 10]))
        log(f"{count} players signed in; lobby phase {seconds / 2:.0f}s")
        lobby, lobby_errors = await lobby_phase(players, site, seconds / 2, pause)
        log(f"launch phase {seconds / 2:.0f}s")
        launch, launch_errors = await launch_phase(players, site, rgs, seconds / 2, launch_pause)
    ms = 1000.0
    return {
        "lobby_p95_ms": percentile(lobby, 0.95) * ms, "launch_p95_ms": percentile(launch, 0.95) * ms,
        "lobby_p50_ms": percentile(lobby, 0.50) * ms, "lobby_p99_ms": percentile(lobby, 0.99) * ms,
        "lobby_pages_per_s": len(lobby) / (seconds / 2),
        "launch_p50_ms": percentile(launch, 0.50) * ms, "launch_p99_ms": percentile(launch, 0.99) * ms,
        "launches": len(launch), "launches_per_s": len(launch) / (seconds / 2),
        "errors": lobby_errors + launch_errors, "players": count, "think_s": pause, "launch_think_s": launch_pause,
    }


def main() -> None:
    seconds = bench_seconds(20.0)
    count = int(os.environ.get("WEB_BENCH_PLAYERS", "50"))
    pause = float(os.environ.get("WEB_BENCH_THINK_SECONDS", "1.0"))
    launch_pause = float(os.environ.get("WEB_BENCH_LAUNCH_THINK_SECONDS", "10.0"))
    os.environ["GP_GATEWAY_RATE_LIMIT_IP_RATE"] = "0"  # read by the gateway `gameplane up` starts
    with platform() as p:
        values = asyncio.run(run(p.gateway, p.url("web"), p.url("rgs"), count, seconds, pause, launch_pause))
    result_line("web", **values)


if __name__ == "__main__":
    main()
