"""bench/analytics: wallet events ingested into facts per second (with duplicates), and the latency
of a 30-day GGR/NGR per game query over 10 million bet facts.

A real analytics process (uvicorn, as one pod runs it) on a real Postgres and NATS.

Ingest: the wallet's events put on the stream as its outbox relay puts them, per round a
`wallet.bet_placed` and the `wallet.win_settled` that closes it, for random players and games; a
share of them (ANALYTICS_BENCH_DUP_SHARE, default 0.1) is delivered a second time with another
Nats-Msg-Id, so the stream keeps it and the consumer meets the same event id again. Measured: from
the first event published until every event was consumed (the two durables have nothing pending),
events per second including the duplicates. The run checks itself: the facts hold each event once
and the rollups' stakes and wins equal what was played.

Query: 10 million bet facts over 30 days (40 games, ANALYTICS_BENCH_PLAYERS players, default 5000)
bulk-loaded with INSERT ... SELECT FROM generate_series, one day's partition at a time, and their
rollups built with INSERT ... SELECT ... GROUP BY (what the consumers keep up to date incrementally;
a bulk load skips that). Then `GET /internal/analytics/kpis?group=range&game=..` for the last 30
days (GGR, NGR, active players ... of one game) over HTTP for random games, for BENCH_SECONDS:
p50/p95.

Env: BENCH_SECONDS (default 20), ANALYTICS_BENCH_ROUNDS (default 2500 x BENCH_SECONDS: events are
twice that), ANALYTICS_BENCH_FACTS (default 10000000), ANALYTICS_BENCH_PLAYERS, ANALYTICS_BENCH_DUP_SHARE.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats

sys.path.insert(0, str(Path(__file__).parent))
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, percentile, result_line, stop
from wallet import wait_ready

from gameplane.contracts.wallet import BetPlaced, WinSettled
from gameplane.devtools.identities import Identities
from gameplane.devtools.infra import free_port
from gameplane.kit.events import STREAM_NAME, Envelope
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

IDS = Identities.generate(("analytics", "backoffice", "players"))
DURABLES = ("analytics-wallet_bet_placed", "analytics-wallet_win_settled")
GAMES = 40
DAYS = 30


def start(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "gameplane.analytics.app:build_app", "--factory", "--host",
            "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
            "--http", "httptools"]
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, env={**os.environ, **IDS.env("analytics"), **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def round_events(rng: random.Random, players: list[uuid.UUID], n: int, dup_share: float
                 ) -> tuple[list[tuple[Envelope, str]], int, int, int]:
    """(envelope, Nats-Msg-Id) of n rounds plus the duplicates, shuffled into the stream a little
    later than the originals; the stakes, the wins and the number of distinct events."""
    out: list[tuple[Envelope, str]] = []
    staked = won = 0
    for _ in range(n):
        p, stake, rid = rng.choice(players), rng.randrange(10, 5000), uuid.uuid4().hex
        game = f"game-{rng.randrange(GAMES)}"
        now = datetime.now(UTC)
        win = rng.choice((0, 0, stake * 2))
        staked, won = staked + stake, won + win
        for e in (BetPlaced(transaction_id=uuid.uuid4(), player_id=p, currency="EUR", amount=stake, cash=stake,
                            bonus=0, occurred_at=now, round_id=rid, game_id=game, provider="rgs"),
                  WinSettled(transaction_id=uuid.uuid4(), player_id=p, currency="EUR", amount=win, cash=win, bonus=0,
                             occurred_at=now, round_id=rid, game_id=game, provider="rgs", round_closed=True)):
            env = Envelope.wrap(e, "wallet")
            out.append((env, str(env.id)))
    distinct = len(out)
    # a redelivery some hundreds of events after the original
    placed = [(float(i), item) for i, item in enumerate(out)]
    for i in rng.sample(range(distinct), int(distinct * dup_share)):
        env = out[i][0]
        placed.append((i + rng.randrange(100, 1000) + 0.5, (env, f"{env.id}:again")))
    placed.sort(key=lambda p: p[0])
    return [item for _, item in placed], staked, won, distinct


async def publish(js: object, items: list[tuple[Envelope, str]]) -> None:
    acks = []
    for env, msg_id in items:
        acks.append(await js.publish_async(env.subject, env.model_dump_json().encode(),  # type: ignore[attr-defined]
                                           headers={"Nats-Msg-Id": msg_id}))
        if len(acks) >= 500:
            await asyncio.gather(*acks)
            acks.clear()
    await asyncio.gather(*acks)


async def pending(js: object) -> int:
    total = 0
    for durable in DURABLES:
        try:
            info = await js.consumer_info(STREAM_NAME, durable)  # type: ignore[attr-defined]
        except Exception:
            return 1 << 30  # not created yet
        total += info.num_pending + info.num_ack_pending
    return total


async def ingest(js: object, conn: asyncpg.Connection, items: list[tuple[Envelope, str]], distinct: int,
                 timeout: float) -> float:
    before = await conn.fetchval("SELECT count(*) FROM money_facts")
    t0 = time.perf_counter()
    pub = asyncio.create_task(publish(js, items))
    while True:
        await asyncio.sleep(0.2)
        if pub.done() and await pending(js) == 0:
            break
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"events still pending after {timeout:.0f} s")
    await pub
    seconds = time.perf_counter() - t0
    facts = await conn.fetchval("SELECT count(*) FROM money_facts") - before
    assert facts == distinct, (facts, distinct)  # each event once, duplicates or not
    return seconds


LOAD_DAY = """
INSERT INTO money_facts (day, event_id, occurred_at, kind, transaction_id, player_id, currency, amount, cash, bonus,
                         game_id, provider, round_id)
SELECT $1::date, gen_random_uuid(), $1::date + (i % 86400) * interval '1 second', 'bet', gen_random_uuid(),
       ('00000000-0000-4000-8000-' || lpad(to_hex(i % $3), 12, '0'))::uuid, 'EUR',
       10 + (i * 7919) % 4990, 10 + (i * 7919) % 4990, 0, 'game-' || (i * 31) % 40, 'rgs', 'r' || i
FROM generate_series($2::bigint, $2::bigint + $4 - 1) AS i
"""
ROLL_DAY = """
INSERT INTO rollup_day (day, currency, game_id, provider, stakes, bets)
SELECT day, currency, game_id, provider, SUM(amount), count(*) FROM {part} GROUP BY 1, 2, 3, 4
"""
ROLL_PLAYER_DAY = """
INSERT INTO rollup_player_day (day, currency, player_id, game_id, provider, stakes, bets)
SELECT day, currency, player_id, game_id, provider, SUM(amount), count(*) FROM {part} GROUP BY 1, 2, 3, 4, 5
"""


async def bulk_load(dsn: str, facts: int, players: int, last: date) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        per_day = facts // DAYS
        for d in range(DAYS):
            day = last - timedelta(days=DAYS - 1 - d)
            part = f"money_facts_{day:%Y%m%d}"
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {part} PARTITION OF money_facts FOR VALUES FROM "
                               f"('{day}') TO ('{day + timedelta(days=1)}')")
            await conn.execute(LOAD_DAY, day, d * per_day, players, per_day)
            await conn.execute(ROLL_DAY.format(part=part))
            await conn.execute(ROLL_PLAYER_DAY.format(part=part))
            if d % 5 == 4:
                log(f"  loaded {(d + 1) * per_day:,} bet facts")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def query_latency(url: str, last: date, budget: float, rng: random.Random) -> list[float]:
    first = last - timedelta(days=DAYS - 1)
    staff = issue_staff_token(IDS.key("players"), uuid.uuid4(), "bench", ["finance"], ttl=3600)
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        deadline = time.perf_counter() + budget
        warm = 5
        while time.perf_counter() < deadline or len(out) < 20:
            headers = {**IDS.bearer("backoffice", "analytics", ttl=3600), STAFF_HEADER: staff}
            params = {"from": first.isoformat(), "to": last.isoformat(), "currency": "EUR", "group": "range",
                      "game": f"game-{rng.randrange(GAMES)}"}
            t = time.perf_counter()
            r = await http.get("/internal/analytics/kpis", params=params, headers=headers)
            elapsed = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text
            row = r.json()["rows"][0]
            assert row["stakes"] > 0 and row["ggr"] == row["stakes"] - row["wins"]
            if warm:
                warm -= 1
                continue
            out.append(elapsed)
    return out


async def main() -> None:
    budget = bench_seconds(20.0)
    n_rounds = int(os.environ.get("ANALYTICS_BENCH_ROUNDS", str(int(2500 * budget))))
    n_facts = int(os.environ.get("ANALYTICS_BENCH_FACTS", "10000000"))
    n_players = int(os.environ.get("ANALYTICS_BENCH_PLAYERS", "5000"))
    dup_share = float(os.environ.get("ANALYTICS_BENCH_DUP_SHARE", "0.1"))
    rng = random.Random(16)
    with infra() as (pg, nats_server):
        pg.create_database("gp_analytics")
        port = free_port()
        logs = Path(pg.data_dir)
        proc = start({"GP_ANALYTICS_DATABASE_URL": pg.dsn("gp_analytics"), "GP_ANALYTICS_NATS_URL": nats_server.url,
                      "GP_ANALYTICS_LOG_LEVEL": "WARNING", "GP_ANALYTICS_JURISDICTION": "mga",
                      "GP_ANALYTICS_ENDPOINTS": json.dumps({}),
                      "GP_ANALYTICS_PUBLIC_KEYS": json.dumps(IDS.public_keys())}, port, logs / "analytics.log")
        nc = await nats.connect(nats_server.url)
        dsn = pg.dsn("gp_analytics", driver=None)
        try:
            await wait_ready(port, proc)
            js = nc.jetstream()
            conn = await asyncpg.connect(dsn)
            try:
                players = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(n_players)]
                warm, _, _, distinct = round_events(rng, players, 300, 0.0)
                await ingest(js, conn, warm, distinct, 120)  # pools, partitions, the durables
                sums_before = await conn.fetchrow("SELECT COALESCE(SUM(stakes), 0), COALESCE(SUM(wins), 0) "
                                                  "FROM rollup_day")
                items, staked, won, distinct = round_events(rng, players, n_rounds, dup_share)
                meter = CpuMeter([proc.pid, *([pg.pid] if pg.pid else [])])
                meter.start()
                seconds = await ingest(js, conn, items, distinct, max(180.0, budget * 20))
                cpu = meter.stop()
                sums = await conn.fetchrow("SELECT SUM(stakes), SUM(wins) FROM rollup_day")
                assert (sums[0] - sums_before[0], sums[1] - sums_before[1]) == (staked, won)
                rate = len(items) / seconds
                cpu_ms = cpu_report(cpu, len(items), "event")
                log(f"{len(items)} events ({len(items) - distinct} duplicates) ingested in {seconds:.2f} s: "
                    f"{rate:.0f}/s; facts hold {distinct} once each; rollups equal the stakes and wins played")
            finally:
                await conn.close()
            last = datetime.now(UTC).date() - timedelta(days=DAYS + 2)  # clear of the ingest phase's days
            t = time.perf_counter()
            await bulk_load(dsn, n_facts, n_players, last)
            log(f"bulk-loaded {n_facts:,} bet facts and their rollups in {time.perf_counter() - t:.0f} s")
            lat = await query_latency(f"http://127.0.0.1:{port}", last, budget, rng)
            log(f"{len(lat)} 30-day GGR/NGR per game queries: p50 {percentile(lat, 0.5):.1f} ms, "
                f"p95 {percentile(lat, 0.95):.1f} ms")
            result_line("analytics", events_per_s=rate, dup_share=dup_share, kpi_p95_ms=percentile(lat, 0.95),
                        kpi_p50_ms=percentile(lat, 0.5), facts=n_facts, events=len(items),
                        cpu_ms_per_event=cpu_ms)
        finally:
            await nc.close()
            stop(proc)


if __name__ == "__main__":
    asyncio.run(main())
