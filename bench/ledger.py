"""bench/ledger: the wallet's money write on its own, with no HTTP in front of it.

16 loops play rounds (a bet, then a win that closes the round) through the wallet's own fast-path
batcher (gameplane.wallet.fastplay.Batcher, its default slots) on the batch SQL function
(services/gameplane/wallet/sql/0004_fast_batch.sql) over asyncpg, on a migrated wallet database
with 1,000 funded players: exactly the calls the wallet makes, without the HTTP and Python work.
This is the ceiling the database puts under bench/wallet, and what one operation costs Postgres:
`backend_cpu_ms_per_op` is the CPU of the benchmark's own backends per bet or win. A host's speed
drifts by a third within minutes here, so CPU per operation, not the rate, is what tells whether
a change to the ledger made the write cheaper. `ops_per_batch` is how many operations a database
call carried. The run ends with the wallet's reconciliation over the whole database (`breaches`
must be 0).

Schema experiments: LEDGER_BENCH_VARIANTS="a.sql,b.sql+c.sql" adds one database per variant
(its SQL files run after the migrations) and takes turns with the unchanged schema in short
slices, rotating the order, so drift and position hit all alike; each variant prints its CPU per
operation relative to the unchanged schema.

Env: BENCH_SECONDS (measuring budget, default 16), LEDGER_BENCH_LOOPS (default 16),
LEDGER_BENCH_SLOTS (default: the wallet's fast_batch_slots).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from _common import CpuMeter, bench_seconds, infra, log, percentile, result_line
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from gameplane.contracts.wallet import BetRequest, WinRequest
from gameplane.devtools.infra import EmbeddedPostgres
from gameplane.kit import migrate
from gameplane.wallet.fastplay import Batcher, batch_totals, bet_op, win_op
from gameplane.wallet.reconcile import reconcile
from gameplane.wallet.rules import Context
from gameplane.wallet.settings import WalletSettings

PLAYERS = 1000
HOUSE_SHARDS = 16
FUNDS = 10**12
CTX = Context()
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
    pool: asyncpg.Pool | None = None
    batcher: Batcher | None = None
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


async def prepare(pg: EmbeddedPostgres, index: int, sql_files: list[Path], slots: int) -> Variant:
    name = f"gp_ledger_{index}"
    pg.create_database(name)
    url = pg.dsn(name)
    await migrate.upgrade_async("gameplane.wallet", url)
    v = Variant(name="+".join(f.name for f in sql_files) or "schema", url=url)
    v.pool = pool = await asyncpg.create_pool(pg.dsn(name, driver=None), min_size=slots, max_size=slots)
    assert pool is not None
    async with pool.acquire() as con:
        for sql in [f.read_text() for f in sql_files]:
            await con.execute(sql)
        v.players = [uuid.uuid4() for _ in range(PLAYERS)]
        await con.execute(SEED, v.players, FUNDS)
    held = [await pool.acquire() for _ in range(slots)]  # every connection of the pool, for its backend's pid
    v.backends = [con.get_server_pid() for con in held]
    for con in held:
        await pool.release(con)
    v.batcher = Batcher(lambda: pool, slots=slots, max_batch=WalletSettings.model_fields["fast_batch_max"].default,
                        house_shards=HOUSE_SHARDS)
    return v


async def served(batcher: Batcher, op: dict[str, object]) -> None:
    answer = await batcher.submit(op)
    if answer.startswith("!"):
        raise RuntimeError(f"{op['op']} {op['key']} not served: {answer}")


async def play(v: Variant, seconds: float, run_id: str, loops: int) -> None:
    """Each loop plays rounds back to back: a bet, then a win that closes the round."""
    stop_at = time.perf_counter() + seconds
    assert v.batcher is not None
    batcher = v.batcher

    async def run(n: int) -> None:
        while time.perf_counter() < stop_at:
            v.seq += 1
            i = v.seq
            player = v.players[(n * 7919 + i) % PLAYERS]
            rnd = f"{run_id}-{i}"
            t0 = time.perf_counter()
            game = {"player_id": player, "currency": "EUR", "round_id": rnd, "game_id": "slot", "provider": "bench"}
            await served(batcher, bet_op(BetRequest(idempotency_key=f"bench:bet:{rnd}", amount=100, **game), CTX))
            await served(batcher, win_op(WinRequest(idempotency_key=f"bench:win:{rnd}", amount=(i % 5) * 50, **game),
                                         CTX))
            v.latencies.append(time.perf_counter() - t0)
            v.rounds += 1

    meter = CpuMeter(v.backends)
    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*[run(n) for n in range(loops)])
    v.seconds += time.perf_counter() - started
    v.cpu += meter.stop().get("postgres", 0.0)


async def wal_counts(con: asyncpg.Connection) -> tuple[int, int]:
    commits = await con.fetchval("SELECT sum(xact_commit)::bigint FROM pg_stat_database")
    fsyncs = await con.fetchval("SELECT coalesce(sum(fsyncs), 0)::bigint FROM pg_stat_io WHERE object = 'wal'")
    return int(commits), int(fsyncs)


async def main() -> None:
    budget = bench_seconds(16.0)
    loops = int(os.environ.get("LEDGER_BENCH_LOOPS", "16"))
    slots = int(os.environ.get("LEDGER_BENCH_SLOTS", WalletSettings.model_fields["fast_batch_slots"].default))
    variant_files = [[Path(f) for f in spec.split("+") if f]
                     for spec in os.environ.get("LEDGER_BENCH_VARIANTS", "").split(",") if spec]
    with infra() as (pg, _nats):
        variants = [await prepare(pg, i, files, slots) for i, files in enumerate([[], *variant_files])]
        base = variants[0]
        log(f"{len(variants)} database(s), {PLAYERS} players each, {loops} loops, {slots} batch slots")
        for v in variants:  # warm-up: plans cached, pages in memory
            await play(v, 1.0, "warm", loops)
            v.rounds, v.cpu, v.seconds, v.latencies = 0, 0.0, 0.0, []
        slice_s = 2.0
        turns = max(1, int(budget / (slice_s * len(variants))))
        assert base.pool is not None
        async with base.pool.acquire() as con:
            commits0, fsyncs0 = await wal_counts(con)
        batches0, ops0 = batch_totals()
        for turn in range(turns):
            for k in range(len(variants)):
                v = variants[(turn + k) % len(variants)]
                await play(v, min(slice_s, budget / len(variants)), f"t{turn}", loops)
        batches1, ops1 = batch_totals()
        async with base.pool.acquire() as con:
            commits1, fsyncs1 = await wal_counts(con)
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
            if v.pool is not None:
                await v.pool.close()
    result_line("ledger", rt_per_s=base.rounds / base.seconds, p50_ms=base.p_ms(0.5), p99_ms=base.p_ms(0.99),
                backend_cpu_ms_per_op=base.cpu_ms_per_op, ops_per_batch=(ops1 - ops0) / max(1, batches1 - batches0),
                commits_per_flush=(commits1 - commits0) / max(1, fsyncs1 - fsyncs0),
                transactions=report.transactions, breaches=len(report.breaches))


if __name__ == "__main__":
    asyncio.run(main())
