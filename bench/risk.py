"""bench/risk: decisions per second and their latency through the real HTTP route of a running risk
service (a uvicorn process, as one pod runs it), with 100,000 players of history in its feature
store and the shipped rule set (services/gameplane/risk/default_rules.json, 17 rules).

History is bulk-copied into the feature tables (COPY), not replayed through events: per player a
few weeks of day buckets (deposits, bets, wins, logins), some 5-minute buckets of today, one or two
deposit methods, and a login address and device; addresses are drawn from a pool smaller than the
player count, so the shared-address rule has neighbours to count.

Two phases on one process:
- "closed": RISK_BENCH_CONNECTIONS (default 8) connections ask for decisions back to back: the
  decisions per second one process gives, and the CPU each costs (risk + Postgres + the load
  generator, by component);
- "paced": two open loops, latency counted from each request's scheduled start (what payments
  sees at a steady rate): at RISK_BENCH_RATE decisions per second (default 200, some ten times the
  deposits and withdrawals a large operator takes at its peak: `p50_ms`/`p95_ms`/`p99_ms`, the
  p95 target's numbers), then at half of what the closed loop reached (`half_*`: the same process
  near half its capacity on this machine now).
Every decision is a fresh reference (a real decision, written, with its events), 70 % deposits,
30 % withdrawals, for a random seeded player with that player's address, device and method
(one withdrawal in ten to a method never deposited with).

Env: BENCH_SECONDS (measuring budget, default 20: half closed, a quarter each paced phase),
RISK_BENCH_PLAYERS (default 100000), RISK_BENCH_CONNECTIONS, RISK_BENCH_RATE, RISK_BENCH_WORKERS
(processes of the one risk server, default 1: one pod as the chart runs it).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, open_loop, percentile, result_line, stop
from wallet import Conn, close_conns, open_conns, wait_ready

from gameplane.devtools.identities import Identities
from gameplane.devtools.infra import free_port
from gameplane.kit.auth import issue_service_token

IDS = Identities.generate(("risk", "payments"))
PATH = "/internal/risk/decisions"
PACED_CONNECTIONS = 32


def start_risk(db_url: str, nats_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GP_RISK_DATABASE_URL": db_url, "GP_RISK_NATS_URL": nats_url, **IDS.env("risk"),
           "GP_RISK_LOG_LEVEL": "WARNING", "GP_RISK_DB_POOL_SIZE": "4", "GP_RISK_DB_HOT_POOL_SIZE": "16"}
    argv = [sys.executable, "-m", "uvicorn", "gameplane.risk.app:build_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
            "--http", "httptools", "--workers", os.environ.get("RISK_BENCH_WORKERS", "1")]
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


class Player:
    __slots__ = ("device", "id", "ip", "method")

    def __init__(self, rng: random.Random, i: int) -> None:
        self.id = uuid.UUID(int=rng.getrandbits(128))
        self.ip = f"10.{(i // 2) % 200}.{(i // 2) // 200 % 250}.{rng.randrange(250)}"
        self.device = f"dev-{i:06d}"
        self.method = f"card-{i:06d}"


async def seed(dsn: str, players: list[Player], rng: random.Random) -> int:
    """Bulk-copy the history; returns the number of bucket rows."""
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    five = now - timedelta(seconds=now.timestamp() % 300)
    features, buckets, methods, links = [], [], [], []
    for p in players:
        last_dep = now - timedelta(days=rng.randrange(1, 20))
        last_bet = now - timedelta(hours=rng.randrange(1, 48))
        features.append((p.id, "EUR", now - timedelta(days=90), rng.randrange(1_000, 20_000), last_dep,
                         rng.randrange(0, 50_000), rng.randrange(0, 40_000), last_bet, p.ip, p.device, 0, []))
        for d in rng.sample(range(1, 28), 3):
            buckets.append((p.id, "deposits", 86_400, today - timedelta(days=d), 1, rng.randrange(1_000, 20_000)))
            buckets.append((p.id, "deposit_requests", 86_400, today - timedelta(days=d), 1, 5_000))
        for d in rng.sample(range(0, 28), 4):
            n = rng.randrange(20, 300)
            buckets.append((p.id, "bets", 86_400, today - timedelta(days=d), n, n * 100))
            buckets.append((p.id, "wins", 86_400, today - timedelta(days=d), n // 3, n * 90))
        buckets.append((p.id, "logins", 86_400, today - timedelta(days=rng.randrange(0, 7)), 2, 0))
        for k in rng.sample(range(0, 200), 2):
            n = rng.randrange(5, 60)
            buckets.append((p.id, "bets", 300, five - timedelta(seconds=300 * k), n, n * 100))
        methods.append((p.id, p.method, now - timedelta(days=60), last_dep))
        if rng.random() < 0.3:
            methods.append((p.id, p.method + "-b", now - timedelta(days=30), now - timedelta(days=5)))
        links.append(("ip", p.ip, p.id, now - timedelta(days=30), now - timedelta(hours=rng.randrange(1, 600))))
        links.append(("device", p.device, p.id, now - timedelta(days=30), now - timedelta(hours=rng.randrange(1, 600))))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("player_features", records=features, columns=[
            "player_id", "currency", "registered_at", "last_deposit_amount", "last_deposit_at",
            "wagered_since_deposit", "won_since_deposit", "last_bet_at", "last_ip", "last_device", "harm_score",
            "harm_rules"])
        await conn.copy_records_to_table("feature_buckets", records=buckets,
                                         columns=["player_id", "feature", "span", "start", "n", "total"])
        await conn.copy_records_to_table("deposit_methods", records=methods,
                                         columns=["player_id", "fingerprint", "first_seen", "last_seen"])
        await conn.copy_records_to_table("identity_links", records=links,
                                         columns=["kind", "value", "player_id", "first_seen", "last_seen"])
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return len(buckets)


def request(rng: random.Random, players: list[Player]) -> dict[str, object]:
    p = players[rng.randrange(len(players))]
    kind = "deposit" if rng.random() < 0.7 else "withdrawal"
    method = p.method if kind == "deposit" or rng.random() > 0.1 else f"new-{rng.randrange(10**9)}"
    return {"kind": kind, "player_id": str(p.id), "amount": rng.randrange(1_000, 60_000), "currency": "EUR",
            "reference": uuid.uuid4().hex, "method_fingerprint": method, "ip": p.ip, "device_id": p.device}


async def closed(port: int, token: str, players: list[Player], seconds: float, connections: int,
                 rng: random.Random) -> tuple[int, list[float], dict[str, int]]:
    conns = await open_conns(port, token, connections)
    errors: list[str] = []
    lat: list[float] = []
    outcomes: dict[str, int] = {}
    stop = time.perf_counter() + seconds

    async def run(c: Conn) -> None:
        import json
        while time.perf_counter() < stop:
            t = time.perf_counter()
            status, body = await c.post(PATH, request(rng, players))
            lat.append(time.perf_counter() - t)
            if status != 200:
                errors.append(f"{status} {body[:200]!r}")
                return
            outcome = json.loads(body)["decision"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*[run(c) for c in conns])
    close_conns(conns, errors)
    return len(lat), lat, outcomes


async def paced(port: int, token: str, players: list[Player], seconds: float, rate: float,
                rng: random.Random) -> list[float]:
    conns = await open_conns(port, token, PACED_CONNECTIONS)
    queue: asyncio.Queue[tuple[float, dict[str, object]] | None] = asyncio.Queue()
    lat: list[float] = []
    errors: list[str] = []

    async def worker(c: Conn) -> None:
        while (item := await queue.get()) is not None:
            due, body = item
            status, answer = await c.post(PATH, body)
            lat.append(time.perf_counter() - due)
            if status != 200:
                errors.append(f"{status} {answer[:200]!r}")

    items = [request(rng, players) for _ in range(int(seconds * rate))]
    workers = [asyncio.create_task(worker(c)) for c in conns]
    await open_loop(items, rate, queue, workers)
    close_conns(conns, errors)
    return lat


async def main() -> None:
    budget = bench_seconds(20.0)
    n_players = int(os.environ.get("RISK_BENCH_PLAYERS", "100000"))
    connections = int(os.environ.get("RISK_BENCH_CONNECTIONS", "8"))
    fixed_rate = os.environ.get("RISK_BENCH_RATE")
    rng = random.Random(14)
    players = [Player(rng, i) for i in range(n_players)]
    token = issue_service_token(IDS.key("payments"), "payments", "risk", ttl=3600)
    with infra() as (pg, nats):
        pg.create_database("gp_risk")
        port = free_port()
        proc = start_risk(pg.dsn("gp_risk"), nats.url, port, Path(pg.data_dir) / "risk.log")
        try:
            await wait_ready(port, proc)
            t = time.perf_counter()
            rows = await seed(pg.dsn("gp_risk", driver=None), players, rng)
            log(f"seeded {n_players} players, {rows} bucket rows in {time.perf_counter() - t:.1f} s")
            # warm: caches, and every connection of the hot pool opened with its statements prepared
            # (as in a pod that has served a while; the paced phase keeps up to 32 requests in flight)
            await closed(port, token, players, 2.0, PACED_CONNECTIONS, rng)
            # the load generator's own heap (100,000 players) out of its collector's way: its pauses
            # would count as the service's latency
            gc.collect()
            gc.freeze()
            meter = CpuMeter([proc.pid, *([pg.pid] if pg.pid else [])])
            meter.start()
            n, lat, outcomes = await closed(port, token, players, budget / 2, connections, rng)
            cpu = meter.stop()
            rps = n / (budget / 2)
            cpu_ms = cpu_report(cpu, n, "decision")
            risk_ms = cpu.get("risk", 0.0) * 1000 / max(1, n)
            log(f"closed loop, {connections} connections: {n} decisions, {rps:.0f}/s, outcomes {outcomes}; "
                f"p50 {percentile(lat, .5) * 1000:.2f} ms, p95 {percentile(lat, .95) * 1000:.2f} ms, "
                f"p99 {percentile(lat, .99) * 1000:.2f} ms")
            rate, half = float(fixed_rate or 200), max(10.0, rps / 2)
            paced_lat = await paced(port, token, players, budget / 4, rate, rng)
            half_lat = await paced(port, token, players, budget / 4, half, rng)
            for r, lat_ in ((rate, paced_lat), (half, half_lat)):
                log(f"open loop at {r:.0f}/s: {len(lat_)} decisions; p50 {percentile(lat_, .5) * 1000:.2f} ms, "
                    f"p95 {percentile(lat_, .95) * 1000:.2f} ms, p99 {percentile(lat_, .99) * 1000:.2f} ms")
            result_line("risk", players=n_players, decisions_per_s=rps,
                        p50_ms=percentile(paced_lat, .5) * 1000, p95_ms=percentile(paced_lat, .95) * 1000,
                        p99_ms=percentile(paced_lat, .99) * 1000, paced_rate=rate,
                        half_rate=half, half_p95_ms=percentile(half_lat, .95) * 1000,
                        half_p99_ms=percentile(half_lat, .99) * 1000,
                        closed_p95_ms=percentile(lat, .95) * 1000, cpu_ms_per_decision=cpu_ms,
                        risk_cpu_ms_per_decision=risk_ms)
        finally:
            stop(proc)


if __name__ == "__main__":
    asyncio.run(main())
