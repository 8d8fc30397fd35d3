"""Provider-facing latency: signed `bet` calls of the canonical seamless-wallet API at a fixed rate.

A real `gameplane up` (every service its own process); players registered through the gateway,
funded through the wallet's internal deposit API, a game session each. Then an open-loop load of
BENCH_PROVIDERS_RATE bet calls per second (default 300) for BENCH_SECONDS (default 20) through
the gateway, as a studio would call (BENCH_PROVIDERS_TARGET=games calls games directly).

BENCH_PROVIDERS_SERVICES=path (the default) runs the services a provider call and the bench's setup
pass through: the gateway, players, games and every service games calls, transitively (the
catalogue's `calls`). =all runs every built service, so the event consumers (bonus, risk,
affiliates, analytics) share the two cores with the path and their CPU per call is counted; in a
real deployment they run elsewhere, which is why the latency target is for the path.
Latency counts from each call's scheduled start, so a stall shows up in the tail instead of
silently lowering the rate.

    .venv/bin/python bench/providers.py
    RESULT providers rate_per_s=... p50_ms=... p99_ms=... errors=... cpu_ms_per_call=... \
        hs256_sign_us=... hs256_verify_us=... eddsa_sign_us=... eddsa_verify_us=... cached_verify_us=... \
        token_ms_per_call=...

cpu_ms_per_call: CPU of every platform process (services, Postgres, NATS) and of the load
generator during the load, per call; the log line before RESULT splits it by component.

The service tokens on the path (gateway -> games, games -> wallet, games -> sessions) are signed
with each caller's Ed25519 key (EdDSA) since issue 13; before, with one shared HS256 secret. Both
schemes are measured here in the same run, on the same CPU: microseconds per sign and per
(uncached) verify, and per cached verify, the cost every call pays. token_ms_per_call is what the
EdDSA scheme costs per provider call: a caller signs one token per target every 40 s and the
callee verifies each token once (then remembers its claims), so per call it is
(sign + verify) x token pairs on the path / (rate x 40 s), plus one cached verify per hop.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
from _common import CpuMeter, bench_seconds, cpu_report, log, open_loop, percentile, platform, result_line

from gameplane import catalog
from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.games import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from gameplane.devtools import localsecrets
from gameplane.kit.auth import SERVICE_TOKEN_TTL, issue_service_token, verify_service_token
from gameplane.kit.keys import KeySet, SigningKey

RATE = float(os.environ.get("BENCH_PROVIDERS_RATE", "300"))
CONNECTIONS = int(os.environ.get("BENCH_PROVIDERS_CONNECTIONS", "64"))
# 96 players at 300 calls/s is a bet every ~3 s each (fast autoplay): few enough to set up in
# about half a minute (registration hashes passwords), many enough that no cache sees one hot player.
PLAYERS = int(os.environ.get("BENCH_PROVIDERS_PLAYERS", "96"))
STAKE = 10


SERVICES = os.environ.get("BENCH_PROVIDERS_SERVICES", "path")
HOPS = 3  # service tokens on a provider call: gateway -> games, games -> wallet, games -> sessions


def _per_op_us(fn: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1e6 / n


def token_costs(n: int = 2000) -> dict[str, float]:
    """CPU microseconds per token operation, HS256 (the shared secret before issue 13, reproduced
    with PyJWT as the kit did) against EdDSA (the kit now), measured in this process back to back."""
    secret = "bench-" + uuid.uuid4().hex * 2
    now = int(time.time())
    claims = {"iss": "games", "aud": "wallet", "iat": now, "exp": now + 600, "typ": "service"}
    hs = jwt.encode(claims, secret, algorithm="HS256")
    key = SigningKey.generate()
    keys = KeySet.of({"games": [key.public]})
    ed = issue_service_token(key, "games", "wallet", ttl=600)

    def ed_verify_uncached() -> None:
        keys.verified.clear()
        verify_service_token(keys, ed, "wallet")

    out = {
        "hs256_sign_us": _per_op_us(lambda: jwt.encode(claims, secret, algorithm="HS256"), n),
        "hs256_verify_us": _per_op_us(lambda: jwt.decode(hs, secret, algorithms=["HS256"], audience="wallet",
                                                         options={"require": ["iss", "aud", "exp"]}), n),
        "eddsa_sign_us": _per_op_us(lambda: issue_service_token(key, "games", "wallet"), n),
        "eddsa_verify_us": _per_op_us(ed_verify_uncached, n),
    }
    verify_service_token(keys, ed, "wallet")
    out["cached_verify_us"] = _per_op_us(lambda: verify_service_token(keys, ed, "wallet"), n * 10)
    renew = SERVICE_TOKEN_TTL * 2 / 3  # a caller renews its token with a third of its life left
    out["token_ms_per_call"] = (HOPS * (out["eddsa_sign_us"] + out["eddsa_verify_us"]) / (RATE * renew)
                                + HOPS * out["cached_verify_us"]) / 1000
    log("token CPU (us per op): " + ", ".join(f"{k} {v:.1f}" for k, v in out.items() if k.endswith("_us")))
    return out


async def setup_players(gateway: str, wallet: str, payments: SigningKey) -> list[str]:
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
                    "authorization": "Bearer " + issue_service_token(payments, "payments", "wallet")})
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


def provider_path() -> list[str]:
    """The gateway and players (the setup registers players) plus games and what it calls, transitively."""
    chosen = ["gateway", "players"]
    todo = ["games"]
    while todo:
        name = todo.pop()
        if name not in chosen:
            chosen.append(name)
            todo += catalog.get(name).calls
    return chosen


def main() -> None:
    seconds = bench_seconds(20.0)
    if SERVICES not in ("path", "all"):
        raise SystemExit(f"BENCH_PROVIDERS_SERVICES must be path or all, not {SERVICES!r}")
    only = ["--only", ",".join(provider_path())] if SERVICES == "path" else None
    tokens_cpu = token_costs()
    # Provider calls are charged to the gateway's partner limit (1,000/s per address by default),
    # so the bench runs with the gateway's real settings.
    with platform(extra_args=only) as p:
        target = p.url("games") if os.environ.get("BENCH_PROVIDERS_TARGET") == "games" else p.gateway
        provider_secret = localsecrets.read(p.data_dir)["providers"]["rgs"]["secret"]
        log(f"setting up {PLAYERS} players with sessions")
        # the deposit is signed as payments would sign it (the run's keys, in its data dir)
        tokens = asyncio.run(setup_players(p.gateway, p.url("wallet"), p.identities().key("payments")))
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
                errors=errors, cpu_ms_per_call=cpu_ms, services=SERVICES, **tokens_cpu)


if __name__ == "__main__":
    main()
