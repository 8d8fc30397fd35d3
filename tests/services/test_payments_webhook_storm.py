"""The webhook storm: 500 deposits, the PSP delivering each success 1-3 times, shuffled and
concurrently: exactly 500 credits in the ledger, each player's cash the sum of their deposits,
one `payments.deposit_succeeded` each, and the day reconciles clean."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from paymentslib import payments_platform

from gameplane.devtools.testing import stored_events

DEPOSITS = 500
PLAYERS = 50


async def test_a_storm_of_duplicated_reordered_webhooks_credits_each_deposit_exactly_once(
        service_settings: Any, nats_server: Any) -> None:
    rng = random.Random(14)
    name = f"storm{uuid.uuid4().hex[:6]}"
    async with payments_platform(service_settings, nats_server.url, psp_name=name) as p:
        players = [await p.player() for _ in range(PLAYERS)]
        gate = asyncio.Semaphore(16)

        async def start(i: int) -> tuple[uuid.UUID, str, int]:
            pid, amount = players[i % PLAYERS], rng.randint(100, 50_000)
            async with gate:
                r = await p.deposit(pid, amount)
            assert r.status_code == 201, r.text
            return pid, r.json()["reference"], amount

        deposits = await asyncio.gather(*(start(i) for i in range(DEPOSITS)))
        deliveries = []
        for _, ref, _ in deposits:
            body = p.psp.event("payment.succeeded", ref)
            deliveries += [body] * rng.randint(1, 3)
        rng.shuffle(deliveries)
        outcomes: Counter[str] = Counter()

        async def deliver(body: bytes) -> None:
            async with gate:
                r = await p.webhook(body)
            assert r.status_code == 200, r.text
            outcomes[r.json()["outcome"]] += 1

        await asyncio.gather(*(deliver(b) for b in deliveries))
        assert outcomes["applied"] == DEPOSITS and outcomes["duplicate"] == len(deliveries) - DEPOSITS

        refs = {ref for _, ref, _ in deposits}
        moves = [m for m in await p.wallet_keys("payments:deposit:") if m["idempotency_key"].split(":")[-1] in refs]
        assert len(moves) == DEPOSITS
        assert sorted(m["idempotency_key"] for m in moves) == sorted(f"payments:deposit:{r}" for r in refs)
        expected: Counter[uuid.UUID] = Counter()
        for pid, _, amount in deposits:
            expected[pid] += amount
        for pid in players:
            assert (await p.balance(pid))["cash"] == expected[pid]
        events = await stored_events(p.nats_url, "gameplane.payments.deposit_succeeded", {"psp": name},
                                     expect=DEPOSITS, timeout=30)
        assert len(events) == DEPOSITS and len({e["data"]["reference"] for e in events}) == DEPOSITS
        run = await p.reconcile(datetime.now(UTC).date())
        assert run["report_rows"] == DEPOSITS and run["mismatches"] == []
