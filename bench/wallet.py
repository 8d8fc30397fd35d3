"""bench/wallet: bet+win round trips per second through the wallet's HTTP API (the wallet as a real
uvicorn server process), 1,000 players, p50/p99 latency of a round trip, and — on the same
embedded PostgreSQL in the same run — pgbench's TPC-B-like tps, printed as a ratio.

Four load phases:
- "spread": closed loop, each connection plays rounds back to back, players spread over 5
  currencies (bets land on 5 house accounts): the most round trips per second the wallet does;
- "hot": the same with every bet in EUR (one house account, which the wallet shards: each batch
  slot posts to a shard of its own); hot/spread shows whether the house is still a hot row;
- "paced": open loop at WALLET_BENCH_RATE round trips per second (default 1,000, the target
  rate), latency counted from each round trip's scheduled start: the latency a caller sees at
  that sustained rate, the stricter reading of "1,000/s with p99 under 50 ms" (near saturation
  an open loop queues without bound, a closed loop cannot). It runs last, after pgbench's tables
  are vacuumed and checkpointed (their aftermath is no cost of the wallet's), on connections
  that have each played a round already;
- "bonus": "hot" again, but a share of the rounds (BENCH_BONUS_SHARE, default 0.2) played by
  players holding bonus money (a little cash and two grants, the first small: bets split cash and
  bonus and draw on several grants): their bets and wins take the SQL fast path with its per-grant
  bookkeeping (sql/0009_fast_path_v4.sql). Measured in the same slices as
  "hot", which is its cash-only reference: RESULT cash_rps (= hot), bonus_rps and bonus_vs_cash;
  bonus_fast_declined is the share of that phase's bets and wins the SQL path declined to the
  Python path (from the wallet's gameplane_wallet_fast_path_total), which should be 0.

Closed-loop latency is mostly the loop's own queue (connections ÷ throughput), so the closed
phases use as many connections as games, the wallet's caller, keeps to it (16, its default
`wallet_connections`): the wallet already saturates both cores there, more only adds waiting.

spread, hot and pgbench take turns in up to three slices each, so a drift of the host's speed
during the run hits all three alike; between slices the wallet's outbox relay is let catch up.
Both the wallet and pgbench reach Postgres over loopback TCP, as a deployed wallet does over the
network.

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams: on a 2-core box
an httpx client would eat the CPU the wallet needs and the numbers would measure the client.

cpu_ms_per_round: CPU of the wallet, Postgres and the load generator per spread round trip (the
log splits it); at 2 cores, 2,000 ms of CPU per second divided by it bounds the round trips/s.

One wallet process by default, as one pod of the wallet Deployment runs it: its batched fast path
(sql/0004_fast_batch.sql) needs less than half a core at 1,000 round trips/s, and a second
process on the same two cores only adds a second outbox relay, smaller batches and more
Postgres connections (WALLET_BENCH_WORKERS=2 measured 10-25 % more CPU per round trip).

Env: BENCH_SECONDS (total measuring budget, default 24), WALLET_BENCH_WORKERS (default 1),
WALLET_BENCH_CONNECTIONS (default 16), WALLET_BENCH_RATE (default 1000),
WALLET_BENCH_PACED_CONNECTIONS (default 64), BENCH_BONUS_SHARE (default 0.2).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, open_loop, percentile, result_line

from gameplane.devtools.identities import Identities
from gameplane.devtools.infra import free_port
from gameplane.kit.auth import issue_service_token

IDS = Identities.generate(("wallet", "games", "payments", "bonus"))
PLAYERS = 1000
SPREAD_CURRENCIES = ("EUR", "USD", "GBP", "CAD", "SEK")


class Conn:
    """One keep-alive HTTP/1.1 connection: POST JSON, read the response, nothing else."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = (f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: dict[str, object]) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        data = json.dumps(body).encode()
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.head
                          + b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload


async def open_conns(port: int, token: str, n: int) -> list[Conn]:
    conns = [Conn(port, token) for _ in range(n)]
    for c in conns:
        await c.open()
    return conns


def close_conns(conns: list[Conn], errors: list[str]) -> None:
    """Close the connections; then fail the run if any round trip failed."""
    for c in conns:
        assert c.writer is not None
        c.writer.close()
    if errors:
        raise RuntimeError(f"{len(errors)} failed round trips, first: {errors[0]}")


def start_wallet(db_url: str, nats_url: str, port: int, workers: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GP_WALLET_DATABASE_URL": db_url, "GP_WALLET_NATS_URL": nats_url,
           **IDS.env("wallet"), "GP_WALLET_LOG_LEVEL": "WARNING",
           # the general (SQLAlchemy) pool at its deployed default (db_pool_size, 20): it carries the
           # Python path of bonus play in the "bonus" phase, and a smaller one would queue that path
           # behind too few connections and measure the bench, not the wallet
           "GP_WALLET_DB_HOT_POOL_SIZE": "16"}
    argv = [sys.executable, "-m", "uvicorn", "gameplane.wallet.app:build_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
            "--loop", "uvloop", "--http", "httptools"]
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("wallet exited during start")
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if b" 200 " in (await r.readline()):
                w.close()
                return
            w.close()
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("wallet not ready")


async def fund(port: int, token: str, players: list[str], currencies: tuple[str, ...]) -> None:
    conns = await open_conns(port, token, 16)
    jobs = [(p, cur) for p in players for cur in currencies]

    async def run(c: Conn, part: list[tuple[str, str]]) -> None:
        for p, cur in part:
            status, body = await c.post("/internal/wallet/deposits", {
                "idempotency_key": f"fund-{p}-{cur}", "player_id": p, "currency": cur, "amount": 10**9})
            assert status == 200, body

    await asyncio.gather(*[run(c, jobs[i::len(conns)]) for i, c in enumerate(conns)])
    close_conns(conns, [])


async def fund_bonus(port: int, token: str, bonus_token: str, players: list[str]) -> None:
    """Each player: 50 of cash, a grant of 30 and one of 10^9 (spent in that order, after the cash)."""
    cash, grants = await open_conns(port, token, 8), await open_conns(port, bonus_token, 8)

    async def run(c: Conn, g: Conn, part: list[str]) -> None:
        for p in part:
            status, body = await c.post("/internal/wallet/deposits", {
                "idempotency_key": f"fund-{p}-EUR", "player_id": p, "currency": "EUR", "amount": 50})
            assert status == 200, body
            for n, amount in enumerate((30, 10**9)):
                status, body = await g.post("/internal/wallet/bonuses", {
                    "idempotency_key": f"grant-{p}-{n}", "grant_id": f"bench-{p}-{n}", "player_id": p,
                    "currency": "EUR", "amount": amount})
                assert status == 200, body

    await asyncio.gather(*[run(c, g, players[i::len(cash)]) for i, (c, g) in enumerate(zip(cash, grants, strict=True))])
    close_conns(cash + grants, [])


async def play_round(c: Conn, player: str, currency: str, round_id: str, win: int) -> str | None:
    """A bet of 100, then a win that closes the round; None, or what went wrong."""
    s1, b1 = await c.post("/internal/wallet/bets", {
        "idempotency_key": f"b-{round_id}", "player_id": player, "currency": currency, "amount": 100,
        "round_id": round_id, "game_id": "bench", "provider": "rgs"})
    s2, b2 = await c.post("/internal/wallet/wins", {
        "idempotency_key": f"w-{round_id}", "player_id": player, "currency": currency, "amount": win,
        "round_id": round_id, "game_id": "bench", "provider": "rgs", "close_round": True})
    if s1 != 200 or s2 != 200:
        return f"{s1} {b1[:200]!r} / {s2} {b2[:200]!r}"
    return None


async def load(port: int, token: str, players: list[str], currencies: tuple[str, ...], seconds: float,
               connections: int, tag: str) -> tuple[int, list[float]]:
    """Each connection plays rounds back to back: bet, then a win that closes the round."""
    conns = await open_conns(port, token, connections)
    latencies: list[float] = []
    done = 0
    run_id = uuid.uuid4().hex[:8]  # every call plays new rounds (a repeated key would be a replay)
    stop_at = time.perf_counter() + seconds
    errors: list[str] = []

    async def run(n: int, c: Conn) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop_at:
            p = players[(n * 7919 + i) % len(players)]
            cur = currencies[(n + i) % len(currencies)]
            rnd = f"{tag}-{run_id}-{n}-{i}"
            t0 = time.perf_counter()
            if (error := await play_round(c, p, cur, rnd, (i % 5) * 50)) is not None:
                errors.append(error)
                return
            latencies.append(time.perf_counter() - t0)
            done += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*[run(n, c) for n, c in enumerate(conns)])
    elapsed = time.perf_counter() - started
    close_conns(conns, errors)
    return int(done / elapsed), latencies


async def paced(port: int, token: str, players: list[str], currencies: tuple[str, ...], seconds: float,
                connections: int, rate: float) -> tuple[float, list[float]]:
    """Open loop: round trip i is due at t0 + i/rate, whatever happened to earlier ones."""
    conns = await open_conns(port, token, connections)
    run_id = uuid.uuid4().hex[:8]
    # each connection used once first, as a caller's keep-alive pool is: its first request's
    # set-up is not what a sustained rate costs
    errors = [e for e in await asyncio.gather(*[play_round(c, players[n], currencies[0], f"paced-{run_id}-warm{n}", 0)
                                                for n, c in enumerate(conns)]) if e is not None]
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    latencies: list[float] = []

    async def run(c: Conn) -> None:
        while (item := await queue.get()) is not None:
            due, i = item
            p, cur, rnd = players[(i * 7919) % len(players)], currencies[i % len(currencies)], f"paced-{run_id}-{i}"
            if (error := await play_round(c, p, cur, rnd, (i % 5) * 50)) is not None:
                errors.append(error)
            latencies.append(time.perf_counter() - due)

    total = int(rate * seconds)
    elapsed = await open_loop(range(total), rate, queue, [asyncio.create_task(run(c)) for c in conns])
    close_conns(conns, errors)
    return total / elapsed, latencies


def _pgbench_args(pg: object) -> list[str]:
    # Over loopback TCP, like the wallet here: both sides of the ratio pay the same transport, the
    # one a deployed wallet has to its database. (Over the Unix socket pgbench, seven round trips
    # per transaction, gains about 20 %, the wallet, one per operation, about 5 %.)
    return [str(pg.bin("pgbench")), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]  # type: ignore[attr-defined]


def pgbench_init(pg: object) -> None:
    pg.create_database("pgbench")  # type: ignore[attr-defined]
    subprocess.run([*_pgbench_args(pg), "-i", "-s", "10", "-q", "pgbench"], check=True, capture_output=True)


def pgbench(pg: object, seconds: float, clients: int) -> tuple[int, float]:
    """(transactions, seconds) of one pgbench TPC-B-like run."""
    out = subprocess.run([*_pgbench_args(pg), "-c", str(clients), "-j", "2", "-T", str(max(1, round(seconds))),
                          "pgbench"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"tps = ([0-9.]+)", out)
    if m is None:
        raise RuntimeError(out)
    return round(float(m.group(1)) * max(1, round(seconds))), float(max(1, round(seconds)))


async def checkpoint(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("CHECKPOINT")
    finally:
        await con.close()


async def settle(pg: object) -> None:
    """After pgbench: vacuum its tables and checkpoint, so their autovacuum and the checkpoint its
    writes are owed do not land in the wallet's paced phase (they are no cost of the wallet's)."""
    con = await asyncpg.connect(pg.dsn("pgbench", driver=None))  # type: ignore[attr-defined]
    try:
        await con.execute("VACUUM")
        await con.execute("CHECKPOINT")
    finally:
        await con.close()


async def drained(dsn: str, timeout: float = 10.0) -> None:
    """Wait until the wallet's outbox relay has published every event of the last slice, so its
    catching up does not run during the next one."""
    con = await asyncpg.connect(dsn)
    try:
        for _ in range(int(timeout / 0.1)):
            if await con.fetchval("SELECT count(*) FROM outbox") == 0:
                return
            await asyncio.sleep(0.1)
    finally:
        await con.close()


_FAST = re.compile(r'^gameplane_wallet_fast_path_total\{operation="(bet|win)",outcome="(served|declined)"\} (\S+)$',
                   re.M)


def fast_path_counts(port: int) -> dict[str, float]:
    """The wallet's bets and wins served / declined by its SQL fast path so far (its /metrics; one
    process: with several, this is whichever answered)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"served": 0.0, "declined": 0.0}
    for _, outcome, value in _FAST.findall(text):
        out[outcome] += float(value)
    return out


def pct(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


async def main() -> None:
    budget = bench_seconds(24.0)
    workers = int(os.environ.get("WALLET_BENCH_WORKERS", "1"))
    connections = int(os.environ.get("WALLET_BENCH_CONNECTIONS", "16"))
    rate = float(os.environ.get("WALLET_BENCH_RATE", "1000"))
    # Open loop: enough connections that the client never caps the rate (16 connections at ~16 ms
    # a round trip would top out at exactly 1,000/s); several games replicas call one wallet.
    paced_connections = int(os.environ.get("WALLET_BENCH_PACED_CONNECTIONS", "64"))
    share = float(os.environ.get("BENCH_BONUS_SHARE", "0.2"))
    phase = budget / 5
    # spread, hot and pgbench take turns in short slices: the host's speed drifts within a run
    # (pgbench's tps moves by a third between runs), and interleaving keeps the ratios fair.
    slices = max(1, min(3, int(phase // 2)))
    players = [str(uuid.uuid4()) for _ in range(PLAYERS)]
    bonus_players = [str(uuid.uuid4()) for _ in range(round(PLAYERS * share))]
    mixed = players[:PLAYERS - len(bonus_players)] + bonus_players
    token = issue_service_token(IDS.key("games"), "games", "wallet", ttl=3600)
    bonus_token = issue_service_token(IDS.key("bonus"), "bonus", "wallet", ttl=3600)
    # deposits are payments' calls (the wallet refuses them from games)
    payments_token = issue_service_token(IDS.key("payments"), "payments", "wallet", ttl=3600)
    with infra() as (pg, nats):
        pg.create_database("gp_wallet")
        port = free_port()
        log_path = Path(pg.data_dir) / "wallet.log"
        proc = start_wallet(pg.dsn("gp_wallet"), nats.url, port, workers, log_path)
        try:
            await wait_ready(port, proc)
            log(f"wallet up ({workers} process(es)); funding {PLAYERS} players in {len(SPREAD_CURRENCIES)} currencies")
            await fund(port, payments_token, players, SPREAD_CURRENCIES)
            await fund_bonus(port, payments_token, bonus_token, bonus_players)
            # pgbench's tables are written (and flushed by a checkpoint) before anything is measured,
            # so no phase pays for loading them.
            pgbench_init(pg)
            await checkpoint(pg.dsn("postgres", driver=None))
            await load(port, token, players, SPREAD_CURRENCIES, 2.0, connections, "warm")
            meter = CpuMeter([proc.pid, *([pg.pid] if pg.pid else [])])
            wallet_dsn = pg.dsn("gp_wallet", driver=None, local=True)
            lat: list[float] = []
            hot_lat: list[float] = []
            bonus_lat: list[float] = []
            bonus_fast = {"served": 0.0, "declined": 0.0}  # the bonus phase's bets and wins on the SQL path
            cpu: dict[str, float] = {}
            pgbench_tx, pgbench_s = 0, 0.0
            for _ in range(slices):
                await drained(wallet_dsn)
                meter.start()
                lat += (await load(port, token, players, SPREAD_CURRENCIES, phase / slices, connections, "spread"))[1]
                for k, v in meter.stop().items():
                    cpu[k] = cpu.get(k, 0.0) + v
                await drained(wallet_dsn)
                hot_lat += (await load(port, token, players, ("EUR",), phase / slices, connections, "hot"))[1]
                await drained(wallet_dsn)
                before = fast_path_counts(port)
                bonus_lat += (await load(port, token, mixed, ("EUR",), phase / slices, connections, "bonus"))[1]
                for k, v in fast_path_counts(port).items():
                    bonus_fast[k] += v - before[k]
                await drained(wallet_dsn)
                tx, secs = pgbench(pg, phase / slices, connections)
                pgbench_tx, pgbench_s = pgbench_tx + tx, pgbench_s + secs
            spread, hot, tps = len(lat) / phase, len(hot_lat) / phase, pgbench_tx / pgbench_s
            bonus = len(bonus_lat) / phase
            cpu_ms = cpu_report(cpu, len(lat), "round trip")
            log(f"spread: {spread:.0f} bet+win/s p50={pct(lat, .5):.1f}ms p99={pct(lat, .99):.1f}ms")
            log(f"hot:    {hot:.0f} bet+win/s p50={pct(hot_lat, .5):.1f}ms p99={pct(hot_lat, .99):.1f}ms")
            log(f"bonus:  {bonus:.0f} bet+win/s with {share:.0%} of rounds on bonus players "
                f"p50={pct(bonus_lat, .5):.1f}ms p99={pct(bonus_lat, .99):.1f}ms ({bonus / hot:.2f} of hot)")
            declined = bonus_fast["declined"] / max(1.0, bonus_fast["served"] + bonus_fast["declined"])
            log(f"bonus:  {declined:.1%} of its bets and wins declined by the SQL fast path to the Python path")
            log(f"pgbench: {tps:.0f} tps ({slices} slices of each, taking turns)")
            await settle(pg)
            await drained(wallet_dsn)
            paced_rate, paced_lat = await paced(port, token, players, SPREAD_CURRENCIES, phase, paced_connections,
                                                rate)
            log(f"paced:  {paced_rate:.0f} bet+win/s offered p50={pct(paced_lat, .5):.1f}ms "
                f"p99={pct(paced_lat, .99):.1f}ms")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    result_line("wallet", bets_per_s=spread, p50_ms=pct(lat, .5), p99_ms=pct(lat, .99), pgbench_tps=tps,
                ratio=spread / tps, hot_bets_per_s=hot, hot_vs_spread=hot / spread, paced_per_s=paced_rate,
                paced_p50_ms=pct(paced_lat, .5), paced_p99_ms=pct(paced_lat, .99), cpu_ms_per_round=cpu_ms,
                cash_rps=hot, bonus_rps=bonus, bonus_vs_cash=bonus / hot, bonus_share=share,
                bonus_p99_ms=pct(bonus_lat, .99), bonus_fast_declined=declined)


if __name__ == "__main__":
    asyncio.run(main())
