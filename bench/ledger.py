"""bench/ledger: the wallet's money write on its own, with no HTTP in front of it.

16 connections call the bet/win SQL functions of the wallet's fast path
(services/gameplane/wallet/sql/0002_fast_play.sql) back to back over asyncpg, on a migrated
wallet database with 1,000 funded players and 16 house shards, exactly as the wallet calls them.
This is the ceiling the database puts under bench/wallet, and what one operation costs Postgres:
`backend_cpu_ms_per_op` is the CPU of the benchmark's own backends per bet or win. A host's speed
drifts by a third within minutes here, so CPU per operation, not the rate, is what tells whether
a change to the ledger made the write cheaper. The run ends with the wallet's reconciliation
over the whole database (`breaches` must be 0).

Schema experiments: LEDGER_BENCH_VARIANTS="a.sql,b.sql+c.sql" adds one database per variant
(its SQL files run after the migrations) and takes turns with the unchanged schema in short
slices, rotating the order, so drift and position hit all alike; each variant prints its CPU per
operation relative to the unchanged schema.

Env: BENCH_SECONDS (measuring budget, default 16), LEDGER_BENCH_CONNECTIONS (default 16).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from _common import CpuMeter, bench_seconds, infra, log, percentile, result_line
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from gameplane.kit import migrate
from gameplane.kit.devinfra import EmbeddedPostgres
from gameplane.wallet import ledger
from gameplane.wallet.reconcile import reconcile

PLAYERS = 1000
HOUSE_SHARDS = 16
FUNDS = 10**12
BET = "SELECT wallet_fast_bet($1, $2, $3, 'EUR', $4, $5, 'slot', 'bench', $6, $7, $8, $9, '{}', $10)"
WIN = "SELECT wallet_fast_win($1, $2, $3, 'EUR', $4, $5, 'slot', 'bench', true, $6, $7, $8, $9, '{}', $10)"
# Funding as the ledger would record deposits: PSP clearing -> player cash, one keyed transaction each.
SEED = """
WITH p AS (SELECT unnest($1::uuid[]) AS player, gen_random_uuid() AS tx),
psp AS (INSERT INTO accounts (owner, kind, currency, balance)
        VALUES ('platform', 'psp_clearing', 'EUR', -$2::bigint * (SELECT count(*) FROM p)) RETURNING id),
cash AS (INSERT INTO accounts (owner, kind, currency, balance)
         SELECT player::text, 'cash', 'EUR', $2 FROM p RETURNING id, owner),
tx AS (INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash)
       SELECT tx, 'seed:' || player, 'deposit', player, 'EUR', $2, $2 FROM p),
ops AS (INSERT INTO operations (key, kind, request_hash, transaction_id, response)
        SELECT 'seed:' || player, 'deposit', 'seed', tx, jsonb_build_object('transaction_id', tx) FROM p)
INSERT INTO entries (transaction_id, account_id, currency, amount)
SELECT p.tx, cash.id, 'EUR', $2 FROM p JOIN cash ON cash.owner = p.player::text
UNION ALL SELECT p.tx, (SELECT id FROM psp), 'EUR', -$2 FROM p
"""


@dataclass
class Variant:
    name: str
    url: str
    conns: list[asyncpg.Connection] = field(default_factory=list)
    backends: list[int] = field(default_factory=list)
    players: list[uuid.UUID] = field(default_factory=list)
    rounds: int = 0
    cpu: float = 0.0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    seq: int = 0

    @property
    def cpu_ms_per_op(self) -> float:
        return self.cpu * 1000 / max(1, 2 * self.rounds)  # a round is a bet and a win

    def p_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def prepare(pg: EmbeddedPostgres, index: int, sql_files: list[Path], connections: int) -> Variant:
    name = f"gp_ledger_{index}"
    pg.create_database(name)
    url = pg.dsn(name)
    await migrate.upgrade_async("gameplane.wallet", url)
    v = Variant(name="+".join(f.name for f in sql_files) or "schema", url=url)
    dsn = pg.dsn(name, driver=None)
    v.conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    for sql in [f.read_text() for f in sql_files]:
        await v.conns[0].execute(sql)
    v.players = [uuid.uuid4() for _ in range(PLAYERS)]
    await v.conns[0].execute(SEED, v.players, FUNDS)
    v.backends = [c.get_server_pid() for c in v.conns]
    return v


async def play(v: Variant, seconds: float, run_id: str) -> None:
    """Each connection plays rounds back to back: a bet, then a win that closes the round."""
    stop_at = time.perf_counter() + seconds

    async def run(n: int, con: asyncpg.Connection) -> None:
        while time.perf_counter() < stop_at:
            v.seq += 1
            i = v.seq
            player = v.players[(n * 7919 + i) % PLAYERS]
            rnd = f"{run_id}-{i}"
            details = json.dumps({"round_id": rnd, "game_id": "slot", "provider": "bench"})
            t0 = time.perf_counter()
            for sql, key, amount in ((BET, f"bench:b:{rnd}", 100), (WIN, f"bench:w:{rnd}", (i % 5) * 50)):
                await con.fetchval(sql, key, "0" * 64, player, amount, rnd, details, datetime.now(UTC),
                                   uuid.uuid4(), uuid.uuid4(), ledger.house_shard(key, HOUSE_SHARDS))
            v.latencies.append(time.perf_counter() - t0)
            v.rounds += 1

    meter = CpuMeter(v.backends)
    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*[run(n, c) for n, c in enumerate(v.conns)])
    v.seconds += time.perf_counter() - started
    v.cpu += meter.stop().get("postgres", 0.0)


async def wal_counts(con: asyncpg.Connection) -> tuple[int, int]:
    commits = await con.fetchval("SELECT sum(xact_commit)::bigint FROM pg_stat_database")
    fsyncs = await con.fetchval("SELECT coalesce(sum(fsyncs), 0)::bigint FROM pg_stat_io WHERE object = 'wal'")
    return int(commits), int(fsyncs)


async def main() -> None:
    budget = bench_seconds(16.0)
    connections = int(os.environ.get("LEDGER_BENCH_CONNECTIONS", "16"))
    variant_files = [[Path(f) for f in spec.split("+") if f]
                     for spec in os.environ.get("LEDGER_BENCH_VARIANTS", "").split(",") if spec]
    with infra() as (pg, _nats):
        variants = [await prepare(pg, i, files, connections) for i, files in enumerate([[], *variant_files])]
        base = variants[0]
        log(f"{len(variants)} database(s), {PLAYERS} players each, {connections} connections")
        for v in variants:  # warm-up: plans cached, pages in memory
            await play(v, 1.0, "warm")
            v.rounds, v.cpu, v.seconds, v.latencies = 0, 0.0, 0.0, []
        slice_s = 2.0
        turns = max(1, int(budget / (slice_s * len(variants))))
        commits0, fsyncs0 = await wal_counts(base.conns[0])
        for turn in range(turns):
            for k in range(len(variants)):
                v = variants[(turn + k) % len(variants)]
                await play(v, min(slice_s, budget / len(variants)), f"t{turn}")
        commits1, fsyncs1 = await wal_counts(base.conns[0])
        for v in variants:
            log(f"{v.name}: {v.rounds / v.seconds:.0f} bet+win/s p50={v.p_ms(0.5):.1f}ms p99={v.p_ms(0.99):.1f}ms "
                f"backend CPU {v.cpu_ms_per_op:.3f} ms/op"
                + (f" ({v.cpu_ms_per_op / base.cpu_ms_per_op:.3f} of the schema's)" if v is not base else ""))
        engine = create_async_engine(base.url)
        try:
            async with AsyncSession(engine) as s:
                report = await reconcile(s)
        finally:
            await engine.dispose()
        for breach in report.breaches:
            log(f"BREACH invariant {breach.invariant}: {breach.detail}")
        for v in variants:
            for c in v.conns:
                await c.close()
    result_line("ledger", rt_per_s=base.rounds / base.seconds, p50_ms=base.p_ms(0.5), p99_ms=base.p_ms(0.99),
                backend_cpu_ms_per_op=base.cpu_ms_per_op,
                commits_per_flush=(commits1 - commits0) / max(1, fsyncs1 - fsyncs0),
                transactions=report.transactions, breaches=len(report.breaches))


if __name__ == "__main__":
    asyncio.run(main())
