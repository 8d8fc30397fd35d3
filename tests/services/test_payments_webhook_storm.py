"""The webhook storm: 500 deposits paid on the PSP simulator's hosted page while its delivery is
held, then released at once, the simulator delivering each success 1-3 times (its
DUPLICATE_RATIO/MAX_COPIES), some held back so later ones overtake them (REORDER), many at a time:
exactly 500 credits in the ledger, each player's cash the sum of their deposits, one
`payments.deposit_succeeded` each, and the day reconciles clean against the simulator's report."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from paymentslib import eventually, payments_platform
from prometheus_client import REGISTRY

from gameplane.devtools.testing import stored_events

DEPOSITS = 500
PLAYERS = 50
DELIVERY = {"duplicate_ratio": 0.5, "max_copies": 3, "reorder_ratio": 0.3, "reorder_delay_seconds": 0.5,
            "delivery_concurrency": 16, "seed": 14}


def webhooks_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("gameplane_payments_webhooks_total",
                                     {"psp": "simpsp", "kind": "payment.succeeded", "outcome": outcome}) or 0.0


async def test_a_storm_of_duplicated_reordered_webhooks_credits_each_deposit_exactly_once(
        service_settings: Any, nats_server: Any) -> None:
    rng = random.Random(14)
    async with payments_platform(service_settings, nats_server.url, psp_overrides=DELIVERY) as p:
        players = [await p.player() for _ in range(PLAYERS)]
        gate = asyncio.Semaphore(16)

        async def start(i: int) -> tuple[uuid.UUID, dict[str, Any], int]:
            pid, amount = players[i % PLAYERS], rng.randint(100, 50_000)
            async with gate:
                r = await p.deposit(pid, amount)
            assert r.status_code == 201, r.text
            return pid, r.json(), amount

        deposits = await asyncio.gather(*(start(i) for i in range(DEPOSITS)))
        applied, duplicate = webhooks_counted("applied"), webhooks_counted("duplicate")
        await p.delivery(paused=True)

        async def pay(d: dict[str, Any]) -> None:
            async with gate:
                await p.pay(d["redirect_url"])

        await asyncio.gather(*(pay(d) for _, d, _ in deposits))
        assert (await p.control("GET", "/control/deliveries"))["pending"] >= DEPOSITS  # the storm, held
        await p.delivery(paused=False)

        async def drained() -> bool:
            return (await p.control("GET", "/control/deliveries"))["pending"] == 0
        await eventually(drained, timeout=300, what="every webhook delivered", every=1.0)

        # what the simulator did: every success event delivered 1-3 times, acknowledged, out of order
        psp_refs = {d["psp_reference"] for _, d, _ in deposits}
        events = [e for e in await p.control("GET", "/control/events")
                  if e["kind"] == "payment.succeeded" and e["psp_reference"] in psp_refs]
        assert len(events) == DEPOSITS
        ids = {e["event_id"] for e in events}
        attempts = [a for a in (await p.control("GET", "/control/deliveries"))["attempts"] if a["event_id"] in ids]
        copies: dict[str, set[int]] = defaultdict(set)
        for a in attempts:
            assert a["ok"], a  # payments acknowledged every delivery, duplicates included
            copies[a["event_id"]].add(a["copy"])
        spread = Counter(len(c) for c in copies.values())
        assert set(copies) == ids and set(spread) == {1, 2, 3}, spread
        created = [e["event_id"] for e in events]
        first_seen = list(dict.fromkeys(a["event_id"] for a in attempts))
        assert first_seen != created  # some were overtaken
        deliveries = sum(spread[n] * n for n in spread)
        assert webhooks_counted("applied") - applied == DEPOSITS
        assert webhooks_counted("duplicate") - duplicate == deliveries - DEPOSITS

        refs = {d["reference"] for _, d, _ in deposits}
        moves = [m for m in await p.wallet_keys("payments:deposit:") if m["idempotency_key"].split(":")[-1] in refs]
        assert len(moves) == DEPOSITS
        assert sorted(m["idempotency_key"] for m in moves) == sorted(f"payments:deposit:{r}" for r in refs)
        expected: Counter[uuid.UUID] = Counter()
        for pid, _, amount in deposits:
            expected[pid] += amount
        for pid in players:
            assert (await p.balance(pid))["cash"] == expected[pid]
        published = await stored_events(p.nats_url, "gameplane.payments.deposit_succeeded", {"psp": "simpsp"},
                                        expect=DEPOSITS, timeout=30)
        mine = [e for e in published if e["data"]["reference"] in refs]
        assert len(mine) == DEPOSITS and len({e["data"]["reference"] for e in mine}) == DEPOSITS
        today = datetime.now(UTC).date()
        run = await p.reconcile(today)
        report = p.store.report("simpsp", today)
        assert sum(r.kind == "deposit" for r in report) == DEPOSITS
        assert run["report_rows"] == len(report) and run["mismatches"] == []
