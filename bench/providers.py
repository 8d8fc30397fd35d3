"""Provider-facing latency: signed `bet` calls of the canonical seamless-wallet API at a fixed rate.

A real `gameplane up` (every service its own process); players registered through the gateway,
funded through the wallet's internal deposit API, a game session each. Then an open-loop load of
BENCH_PROVIDERS_RATE bet calls per second (default 300) for BENCH_SECONDS (default 20) through
the gateway, as a studio would call (BENCH_PROVIDERS_TARGET=games calls games directly).
Latency counts from each call's scheduled start, so a stall shows up in the tail instead of
silently lowering the rate.

    .venv/bin/python bench/providers.py
    RESULT providers rate_per_s=... p50_ms=... p99_ms=... errors=... cpu_ms_per_call=...

cpu_ms_per_call: CPU of every platform process (services, Postgres, NATS) and of the load
generator during the load, per call; the log line before RESULT splits it by component.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid

import httpx
import psutil
from _common import CpuMeter, bench_seconds, cpu_report, log, open_loop, percentile, platform, result_line

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.games import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from gameplane.devtools import localsecrets
from gameplane.kit.auth import issue_service_token

RATE = float(os.environ.get("BENCH_PROVIDERS_RATE", "300"))
CONNECTIONS = int(os.environ.get("BENCH_PROVIDERS_CONNECTIONS", "64"))
# 96 players at 300 calls/s is a bet every ~3 s each (fast autoplay): few enough to set up in
# about half a minute (registration hashes passwords), many enough that no cache sees one hot player.
PLAYERS = int(os.environ.get("BENCH_PROVIDERS_PLAYERS", "96"))
STAKE = 10


async def setup_players(gateway: str, wallet: str, secret: str) -> list[str]:
    async def one(i: int) -> str:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        password = f"Bench-{uuid.uuid4().hex}"
        async with httpx.AsyncClient(base_url=gateway, timeout=60) as gw:
            r = await gw.post("/v1/players/register", json={"email": email, "password": password,
                                                            "date_of_birth": "1985-01-01", "country": "MT",
                                                            "currency": "EUR"})
            r.raise_for_status()
            login = (await gw.post("/v1/players/login", json={"email": email, "password": password})).json()
            body = wallet_api.DepositRequest(idempotency_key=f"bench:{uuid.uuid4()}", player_id=login["player_id"],
                                             currency="EUR", amount=10_000_000, psp="bench")
            async with httpx.AsyncClient(base_url=wallet, timeout=60) as w:
                r = await w.post(wallet_api.PATH_DEPOSITS, json=body.model_dump(mode="json"), headers={
                    "authorization": "Bearer " + issue_service_token(secret, "payments", "wallet")})
                r.raise_for_status()
            r = await gw.post("/v1/sessions", json={"game_id": "fruit-fives"},
                              headers={"authorization": f"Bearer {login['access_token']}"})
            r.raise_for_status()
            return str(r.json()["token"])

    tokens = []
    for start in range(0, PLAYERS, 4):  # a few at a time: registration hashes passwords (argon2id)
        tokens += await asyncio.gather(*(one(i) for i in range(start, min(start + 4, PLAYERS))))
    return tokens


def signed_request(secret: str, host: str, path: str, stamp: str, body: bytes) -> bytes:
    """The whole HTTP/1.1 request, signed as the studio signs it."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{TIMESTAMP_HEADER}: {stamp}\r\n{SIGNATURE_HEADER}: {sign(secret, 'POST', path, stamp, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _worker(host: str, port: int, queue: asyncio.Queue[tuple[float, bytes] | None],
                  latencies: list[float], statuses: dict[str, int]) -> None:
    """One keep-alive HTTP/1.1 connection sending queued calls in turn. A bare asyncio client: an
    httpx pool at hundreds of calls per second costs more CPU than the services it measures."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        item = await queue.get()
        if item is None:
            break
        due, request = item
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            status = head.split(b" ", 2)[1].decode()
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            status = exc.__class__.__name__
            if writer is not None:
                writer.close()
            reader = writer = None
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1


async def load(target: str, secret: str, tokens: list[str], seconds: float) -> tuple[list[float], int, int, float]:
    """Open loop (`open_loop`) of signed bet calls at RATE."""
    url = httpx.URL(target)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    workers = [asyncio.create_task(_worker(url.host, url.port or 80, queue, latencies, statuses))
               for _ in range(CONNECTIONS)]
    total = int(RATE * seconds)
    # Built and signed before the clock starts (each stamped with the time it is due): the
    # studio's own CPU is not the platform's, and here both share two cores.
    start = time.time()
    requests = [signed_request(secret, url.host, "/providers/rgs/bet", str(int(start + i / RATE)), json.dumps({
        "request_id": uuid.uuid4().hex, "token": tokens[i % len(tokens)],
        "transaction_id": uuid.uuid4().hex, "round_id": uuid.uuid4().hex, "game_id": "fruit-fives",
        "amount": STAKE, "currency": "EUR"}).encode()) for i in range(total)]
    elapsed = await open_loop(requests, RATE, queue, workers)
    log(f"answers: {statuses}")
    return latencies, total - statuses.get("200", 0), total, elapsed


def main() -> None:
    seconds = bench_seconds(20.0)
    # Provider calls are charged to the gateway's partner limit (1,000/s per address by default),
    # so the bench runs with the gateway's real settings.
    with platform() as p:
        pid = int(p.state()["wallet"]["pid"])
        secret = psutil.Process(pid).environ()["GP_WALLET_SERVICE_TOKEN_SECRET"]
        target = p.url("games") if os.environ.get("BENCH_PROVIDERS_TARGET") == "games" else p.gateway
        provider_secret = localsecrets.read(p.data_dir)["providers"]["rgs"]["secret"]
        log(f"setting up {PLAYERS} players with sessions")
        tokens = asyncio.run(setup_players(p.gateway, p.url("wallet"), secret))
        log("warm-up")
        asyncio.run(load(target, provider_secret, tokens, 2.0))
        # The studio runs on other machines in real life; here it shares two cores with the
        # platform, so it yields the CPU first.
        os.nice(10)
        log(f"{RATE:.0f} bet calls/s for {seconds:.0f}s against {target}")
        meter = CpuMeter([p.proc.pid])
        meter.start()
        lat, errors, total, elapsed = asyncio.run(load(target, provider_secret, tokens, seconds))
        cpu = meter.stop()
    ms = [x * 1000 for x in lat]
    log(f"{total} calls in {elapsed:.1f}s; mean {statistics.mean(ms):.1f} ms, max {max(ms):.1f} ms")
    cpu_ms = cpu_report(cpu, total, "call")
    result_line("providers", rate_per_s=total / elapsed, p50_ms=percentile(ms, 0.50), p99_ms=percentile(ms, 0.99),
                errors=errors, cpu_ms_per_call=cpu_ms)


if __name__ == "__main__":
    main()
