"""bench/bonus: settled bets applied to wagering per second, with 10,000 active grants, and the
consumer lag returning to zero.

A real bonus process (uvicorn, as one pod runs it) and a real games process (the categories bonus
reads once per game, then from its cache), on a real Postgres and NATS. 10,000 grants in state
wagering are bulk-copied into bonus's tables (one per player, a requirement no bench reaches).
The wallet's events are then put on the stream as its outbox relay puts them: per round a
`wallet.bet_placed` and the `wallet.win_settled` that closes it, for a random player of the
10,000 (slots: every stake counts in full). Measured: from the first event published until every
bet of the run counted (`round_bets` counted), the settled bets per second; the consumer lag
(JetStream pending of bonus's two durables) sampled throughout, its peak and its value at the end.
The run checks its own result: the grants' progress totals exactly the stakes played.

Env: BENCH_SECONDS (default 20: the backlog is sized to about that many seconds at 1,500 rounds/s),
BONUS_BENCH_GRANTS (default 10000), BONUS_BENCH_ROUNDS (default 1500 x BENCH_SECONDS).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import nats

sys.path.insert(0, str(Path(__file__).parent))
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, result_line, stop
from wallet import wait_ready

from gameplane.bonus.wagering import DEFAULT_CONTRIBUTIONS
from gameplane.contracts.games import DEV_PROVIDER_SECRET
from gameplane.contracts.wallet import BetPlaced, WinSettled
from gameplane.devtools.identities import Identities
from gameplane.devtools.infra import free_port
from gameplane.kit.events import STREAM_NAME, Envelope

IDS = Identities.generate(("bonus", "games"))
DURABLES = ("bonus-wallet_bet_placed", "bonus-wallet_win_settled")


def start(module: str, name: str, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", f"{module}:build_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
            "--http", "httptools"]
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, env={**os.environ, **IDS.env(name), **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


async def seed(dsn: str, n: int) -> list[uuid.UUID]:
    """n players, each with one wagering grant; returns the players."""
    now = datetime.now(UTC)
    offer = uuid.uuid4()
    players = [uuid.UUID(int=random.Random(i).getrandbits(128)) for i in range(n)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO offers (offer_id, campaign_id, kind, currency, state, live_version, versions, "
                           "created_at) VALUES ($1, $2, 'no_deposit', 'EUR', 'live', 1, 1, $3)", offer, uuid.uuid4(),
                           now)
        contributions = json.dumps(DEFAULT_CONTRIBUTIONS)
        rows = [(uuid.uuid4(), p, offer, 1, "no_deposit", "EUR", 1000, 0, 10**6, 10**12, 0, contributions,
                 "wagering", None, None, 0, False, None, 0, None, None, now + timedelta(days=30), now, None, None,
                 None, "manual", None, True) for p in players]
        await conn.copy_records_to_table(
            "grants", records=rows, columns=[
                "grant_id", "player_id", "offer_id", "offer_version", "kind", "currency", "amount", "deposit_amount",
                "wagering_multiplier", "wagering_required", "wagered", "contributions", "state", "max_stake",
                "cashout_cap", "priority", "forfeit_on_withdrawal", "spins", "spins_played", "game_id", "spin_stake",
                "expires_at", "created_at", "closed_at", "converted", "reason", "source", "pending",
                "wallet_granted"])
    finally:
        await conn.close()
    return players


def round_events(rng: random.Random, players: list[uuid.UUID], n: int) -> tuple[list[Envelope], int]:
    """Envelopes of n settled rounds (bet, then its closing win) and the total staked."""
    out, staked = [], 0
    for _ in range(n):
        p, stake, rid = rng.choice(players), rng.randrange(10, 5000), uuid.uuid4().hex
        now = datetime.now(UTC)
        staked += stake
        out.append(Envelope.wrap(BetPlaced(transaction_id=uuid.uuid4(), player_id=p, currency="EUR", amount=stake,
                                           cash=stake, bonus=0, occurred_at=now, round_id=rid,
                                           game_id="fruit-fives", provider="rgs"), "wallet"))
        win = rng.choice((0, 0, stake * 2))
        out.append(Envelope.wrap(WinSettled(transaction_id=uuid.uuid4(), player_id=p, currency="EUR", amount=win,
                                            cash=win, bonus=0, occurred_at=now, round_id=rid, game_id="fruit-fives",
                                            provider="rgs", round_closed=True), "wallet"))
    return out, staked


async def publish(js: object, envs: list[Envelope]) -> None:
    acks = []
    for env in envs:
        acks.append(await js.publish_async(env.subject, env.model_dump_json().encode(),  # type: ignore[attr-defined]
                                           headers={"Nats-Msg-Id": str(env.id)}))
        if len(acks) >= 500:
            await asyncio.gather(*acks)
            acks.clear()
    await asyncio.gather(*acks)


async def lag(js: object) -> int:
    total = 0
    for durable in DURABLES:
        info = await js.consumer_info(STREAM_NAME, durable)  # type: ignore[attr-defined]
        total += info.num_pending + info.num_ack_pending
    return total


async def counted(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT (SELECT count(*) FROM round_bets WHERE state = 'counted'), "
                              "(SELECT COALESCE(sum(wagered), 0) FROM grants)")
    assert row is not None
    return int(row[0]), int(row[1])


async def run(js: object, conn: asyncpg.Connection, envs: list[Envelope], bets_before: int,
              timeout: float) -> tuple[float, int, list[int]]:
    """Publish and wait until every bet counted: (seconds, bets counted, lag samples)."""
    bets = len(envs) // 2
    t0 = time.perf_counter()
    pub = asyncio.create_task(publish(js, envs))
    samples: list[int] = []
    while True:
        await asyncio.sleep(0.25)
        n, _ = await counted(conn)
        samples.append(await lag(js))
        if n - bets_before >= bets and pub.done():
            break
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"only {n - bets_before} of {bets} bets counted in {timeout:.0f} s")
    await pub
    return time.perf_counter() - t0, n - bets_before, samples


async def main() -> None:
    budget = bench_seconds(20.0)
    n_grants = int(os.environ.get("BONUS_BENCH_GRANTS", "10000"))
    n_rounds = int(os.environ.get("BONUS_BENCH_ROUNDS", str(int(1500 * budget))))
    rng = random.Random(15)
    with infra() as (pg, nats_server):
        for db in ("gp_bonus", "gp_games"):
            pg.create_database(db)
        ports = {"bonus": free_port(), "games": free_port()}
        urls = json.dumps({k: f"http://127.0.0.1:{p}" for k, p in ports.items()})
        logs = Path(pg.data_dir)
        games = start("gameplane.games.app", "games", {
            "GP_GAMES_DATABASE_URL": pg.dsn("gp_games"), "GP_GAMES_NATS_URL": nats_server.url,
            "GP_GAMES_DEV_MODE": "true", "GP_GAMES_LOG_LEVEL": "WARNING", "GP_GAMES_ENDPOINTS": urls,
            "GP_GAMES_PROVIDERS": json.dumps({"rgs": {"dialect": "canonical", "secret": DEV_PROVIDER_SECRET}})},
            ports["games"], logs / "games.log")
        bonus = start("gameplane.bonus.app", "bonus", {
            "GP_BONUS_DATABASE_URL": pg.dsn("gp_bonus"), "GP_BONUS_NATS_URL": nats_server.url,
            "GP_BONUS_LOG_LEVEL": "WARNING", "GP_BONUS_ENDPOINTS": urls, "GP_BONUS_DB_POOL_SIZE": "8"},
            ports["bonus"], logs / "bonus.log")
        nc = await nats.connect(nats_server.url)
        try:
            await wait_ready(ports["games"], games)
            await wait_ready(ports["bonus"], bonus)
            js = nc.jetstream()
            t = time.perf_counter()
            players = await seed(pg.dsn("gp_bonus", driver=None), n_grants)
            log(f"seeded {n_grants} wagering grants in {time.perf_counter() - t:.1f} s")
            conn = await asyncpg.connect(pg.dsn("gp_bonus", driver=None))
            try:
                warm, _ = round_events(rng, players, 300)
                await run(js, conn, warm, 0, 120)  # caches, pools, the durables created
                before, wagered_before = await counted(conn)
                envs, staked = round_events(rng, players, n_rounds)
                meter = CpuMeter([bonus.pid, *([pg.pid] if pg.pid else [])])
                meter.start()
                seconds, n, samples = await run(js, conn, envs, before, max(120.0, budget * 20))
                cpu = meter.stop()
                _, wagered = await counted(conn)
                assert wagered - wagered_before == staked, (wagered - wagered_before, staked)  # slots: 100 %
                await asyncio.sleep(1.0)
                final_lag = await lag(js)
                rate = n / seconds
                cpu_ms = cpu_report(cpu, n, "settled bet")
                log(f"{n} settled bets ({2 * n} events) applied in {seconds:.2f} s: {rate:.0f}/s; lag peak "
                    f"{max(samples)}, at the end {final_lag}; progress equals the stakes ({staked})")
                result_line("bonus", grants=n_grants, bets=n, events=2 * n, bets_per_s=rate,
                            events_per_s=2 * n / seconds, lag_peak=max(samples), lag_end=final_lag,
                            cpu_ms_per_bet=cpu_ms)
            finally:
                await conn.close()
        finally:
            await nc.close()
            stop(bonus, games)


if __name__ == "__main__":
    asyncio.run(main())
