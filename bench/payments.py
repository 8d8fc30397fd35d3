"""bench/payments: PSP webhooks per second to credited, with duplicates.

Wallet, players and payments run as real processes (`python -m gameplane.<service>`) on a real
Postgres and NATS; the PSP is the bundled simulator (gameplane.devtools.pspsim, in this process)
and payments talks to it through its real `simpsp` adapter. Setup opens PAYMENTS_BENCH_DEPOSITS
deposits through payments' player API (each one a session at the simulator). Senders playing the
PSP then deliver each deposit's `session.paid` webhook 1-3 times in random order. A delivery is in
the simulator's own wire format, signed afresh as the simulator signs each attempt
(gameplane.simulators.psp.dialects.sign), and goes straight to payments'
/webhooks/payments/simpsp: the gateway's partner route only forwards it, and its cost is
bench/gateway's. Each 200 comes back after the wallet credit (or, for a repeat, after the dedupe),
so a delivery's latency is the time to credited.

Two phases, each on its own deposits:
- "closed": PAYMENTS_BENCH_WORKERS (32) senders back to back: the most the processes give on this
  machine (`webhooks_per_s`, `credited_per_s`) and the CPU each delivery costs, by process;
- "paced": an open loop at PAYMENTS_BENCH_RATE deliveries per second (default 300, the target
  rate), latency counted from each delivery's scheduled time (`p50_ms`/`p95_ms`/`p99_ms`): what a
  PSP retrying at that rate sees. A closed loop at saturation only measures its own queue.

RESULT: `webhooks_per_s` (all deliveries, repeats included) and `credited_per_s` (distinct deposits
credited) of the closed phase, the paced phase's latencies and rate, `double_credits` (wallet
transactions beyond one per deposit key over both phases: must be 0), `missing_credits` (answered
`applied` but not in the ledger: must be 0), `cpu_ms_per_webhook`. Targets (issue 14): >= 300
webhooks/s with duplicates, p99 < 100 ms, zero double credits.

Env: BENCH_SECONDS (default 20, split between the phases), PAYMENTS_BENCH_DEPOSITS (default 4000),
PAYMENTS_BENCH_WORKERS (32), PAYMENTS_BENCH_RATE (300).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from _common import CpuMeter, bench_seconds, cpu_report, infra, log, open_loop, percentile, result_line

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.process import ServiceProcess
from gameplane.devtools.pspsim import new_psp_keys, psp_simulator
from gameplane.kit.auth import PLAYER_HEADER
from gameplane.simulators.psp.dialects import SIMPSP_TYPES, sign

PSP = "simpsp"
PLAYERS = 50


def paid_event(player_id: str, deposit: dict[str, Any]) -> bytes:
    """The simulator's `session.paid` of one deposit, as gameplane.simulators.psp.dialects writes it."""
    return json.dumps({
        "id": f"evt_{uuid.uuid4().hex}", "type": SIMPSP_TYPES["payment.succeeded"],
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"session_id": deposit["psp_reference"], "reference": deposit["reference"], "player_id": player_id,
                 "amount_minor": deposit["amount"], "currency": deposit["currency"], "status": "succeeded",
                 "instrument": {"type": "card", "fingerprint": f"fp-{player_id}", "label": "VISA ..4242"},
                 "reason": None}}, separators=(",", ":")).encode()


class Phase:
    """What one phase's deliveries answered and how long each took."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def answered(self, started: float, status: int, answer: bytes) -> None:
        self.latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"webhook answered {status}: {answer[:300]!r}")
        self.outcomes[json.loads(answer)["outcome"]] += 1


async def main() -> None:
    budget = bench_seconds(20)
    n_deposits = int(os.environ.get("PAYMENTS_BENCH_DEPOSITS", "4000"))
    n_workers = int(os.environ.get("PAYMENTS_BENCH_WORKERS", "32"))
    rate = float(os.environ.get("PAYMENTS_BENCH_RATE", "300"))
    rng = random.Random(300)
    ids = dev_identities()
    ids.export()
    keys = new_psp_keys()
    secret = keys[PSP]["secret"]
    with infra() as (pg, nats), tempfile.TemporaryDirectory(prefix="gp-bench-payments-") as tmp:
        root = Path(tmp)
        for db in ("wallet", "players", "payments"):
            pg.create_database(f"gp_{db}")
        common = {"NATS_URL": nats.url, "LOG_LEVEL": "WARNING"}
        wallet = ServiceProcess("wallet", {**common, "DATABASE_URL": pg.dsn("gp_wallet")}, root / "wallet.log")
        players = ServiceProcess("players", {**common, "DATABASE_URL": pg.dsn("gp_players"), "JURISDICTION": "mga",
                                             "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "8192",
                                             "ARGON2_PARALLELISM": "1"}, root / "players.log")
        endpoints = json.dumps({"wallet": wallet.url, "players": players.url})
        payments_env = {**common, "DATABASE_URL": pg.dsn("gp_payments"), "ENDPOINTS": endpoints,
                        "JURISDICTION": "mga", "RISK_FAILSAFE_MAX_DEPOSIT": "100000000"}
        payments = ServiceProcess("payments", payments_env, root / "payments.log")
        # it sends webhooks only for sessions a player completes on the hosted page: none here
        async with psp_simulator({PSP: f"{payments.url}/webhooks/payments/{PSP}"}, keys=keys) as sim:
            payments.env["GP_PAYMENTS_PSPS"] = json.dumps({PSP: sim.connection(PSP)})
            procs = [wallet, players, payments]
            try:
                for p in procs:
                    p.start()
                for p in procs:
                    await p.ready(90)
                others = [pid for pid in (pg.pid, nats.pid) if pid]
                closed, paced, cpu, per_key = await measure(
                    wallet, players, payments, others, ids, secret, budget, n_deposits, n_workers, rate, rng)
            finally:
                for p in procs:
                    p.stop()
    delivered = sum(closed.outcomes.values())
    cpu_ms = cpu_report(cpu, delivered, "webhook")
    applied = closed.outcomes["applied"] + paced.outcomes["applied"]
    double = sum(n - 1 for n in per_key.values() if n > 1)
    missing = max(0, applied - len(per_key))
    log(f"closed loop, {n_workers} senders: {delivered} deliveries in {closed.elapsed:.1f}s: "
        f"{dict(closed.outcomes)}; p50 {percentile(closed.latencies, .5) * 1000:.1f} ms, "
        f"p99 {percentile(closed.latencies, .99) * 1000:.1f} ms")
    log(f"open loop at {rate:.0f}/s: {sum(paced.outcomes.values())} deliveries in {paced.elapsed:.1f}s: "
        f"{dict(paced.outcomes)}")
    result_line("payments", webhooks_per_s=delivered / closed.elapsed,
                credited_per_s=closed.outcomes["applied"] / closed.elapsed,
                p50_ms=percentile(paced.latencies, 0.5) * 1000, p95_ms=percentile(paced.latencies, 0.95) * 1000,
                p99_ms=percentile(paced.latencies, 0.99) * 1000, paced_rate=rate,
                closed_p99_ms=percentile(closed.latencies, 0.99) * 1000, double_credits=double,
                missing_credits=missing, deposits=applied, cpu_ms_per_webhook=cpu_ms)


def deliveries(deposits: list[tuple[str, dict[str, Any]]], rng: random.Random) -> list[bytes]:
    """Each deposit's paid event 1-3 times, shuffled."""
    queue: list[bytes] = []
    for pid, view in deposits:
        queue += [paid_event(pid, view)] * rng.randint(1, 3)
    rng.shuffle(queue)
    return queue


async def measure(wallet: ServiceProcess, players: ServiceProcess, payments: ServiceProcess, others: list[int],
                  ids: Any, secret: str, budget: float, n_deposits: int, n_workers: int, rate: float,
                  rng: random.Random) -> tuple[Phase, Phase, dict[str, float], Counter[str]]:
    limits = httpx.Limits(max_connections=n_workers + 8, max_keepalive_connections=n_workers + 8)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        pids = []
        for _ in range(PLAYERS):
            r = await http.post(players.url + "/v1/players/register", headers=ids.bearer("gateway", "players"),
                                json={"email": f"b-{uuid.uuid4().hex[:10]}@example.com", "country": "MT",
                                      "password": "correct horse battery staple",
                                      "date_of_birth": "1990-01-01", "currency": "EUR"})
            r.raise_for_status()
            pids.append(r.json()["id"])
        log(f"opening {n_deposits} deposits at the simulator ...")
        deposits: list[tuple[str, dict[str, Any]]] = []
        gate = asyncio.Semaphore(16)
        headers = ids.bearer("gateway", "payments", ttl=3600)

        async def open_one(i: int) -> None:
            pid, amount = pids[i % PLAYERS], rng.randint(100, 90_000)
            async with gate:
                r = await http.post(payments.url + "/v1/payments/deposits", headers={**headers, PLAYER_HEADER: pid},
                                    json={"amount": amount, "currency": "EUR", "psp": PSP})
            r.raise_for_status()
            deposits.append((pid, r.json()))

        await asyncio.gather(*(open_one(i) for i in range(n_deposits)))
        # the paced phase's share: its rate for half the budget, at two deliveries a deposit on average
        n_paced = min(len(deposits) // 2, int(rate * budget / 2 / 2) + 50)
        closed_queue, paced_queue = deliveries(deposits[n_paced:], rng), deliveries(deposits[:n_paced], rng)
        url = f"{payments.url}/webhooks/payments/{PSP}"
        meter = CpuMeter([*(p.proc.pid for p in (wallet, players, payments) if p.proc is not None), *others])
        closed, paced = Phase(), Phase()
        # the senders on aiohttp: httpx cost the bench (the load generator, on the same cores) more CPU
        # per delivery than payments spent on it
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n_workers * 2)) as sess:

            async def deliver(body: bytes, started: float, phase: Phase) -> None:
                signed = sign(PSP, secret, body, int(time.time()))  # each attempt signed afresh
                async with sess.post(url, data=body, headers={**signed, "content-type": "application/json"}) as r:
                    answer = await r.read()
                phase.answered(started, r.status, answer)

            log(f"closed loop: {len(closed_queue)} deliveries for {len(deposits) - n_paced} deposits, "
                f"{n_workers} senders ...")
            meter.start()
            t0 = time.perf_counter()
            stop_at = t0 + budget / 2
            it = iter(closed_queue)

            async def sender() -> None:
                for body in it:
                    if time.perf_counter() > stop_at:
                        return
                    await deliver(body, time.perf_counter(), closed)

            await asyncio.gather(*(sender() for _ in range(n_workers)))
            closed.elapsed = time.perf_counter() - t0
            cpu = meter.stop()

            log(f"open loop: {len(paced_queue)} deliveries for {n_paced} deposits at {rate:.0f}/s ...")
            queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

            async def worker() -> None:
                while (item := await queue.get()) is not None:
                    due, body = item
                    await deliver(body, due, paced)

            # more workers than the closed loop's senders: a stall must show as latency, not as a
            # rate the generator could not keep
            workers = [asyncio.create_task(worker()) for _ in range(n_workers * 2)]
            paced.elapsed = await open_loop(paced_queue[:int(rate * budget / 2)], rate, queue, workers)
        r = await http.get(wallet.url + "/internal/wallet/movements", headers=ids.bearer("payments", "wallet"),
                           params={"prefix": "payments:deposit:", "since": "2000-01-01T00:00:00Z",
                                   "until": "2100-01-01T00:00:00Z"})
        r.raise_for_status()
        per_key = Counter(m["idempotency_key"] for m in r.json()["items"])
    return closed, paced, cpu, per_key


if __name__ == "__main__":
    asyncio.run(main())
