"""24 concurrent clients on the same 5 players and the same house: bets, wins, rollbacks (racing
each other's rounds), deposits and withdrawal holds, with random client-side retries of the same
key (some sent twice at once). Afterwards: a clean reconciliation, every acknowledged operation
present exactly once with the acknowledged transaction id, and every player's balances equal to the
sum of what was acknowledged — nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import text
from walletlib import W, caller_of

from gameplane.devtools.testing import as_service, running
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

CLIENTS, OPS_PER_CLIENT, PLAYERS = 24, 40, 5


def effect(doc: dict[str, Any]) -> tuple[int, int, int]:
    """(cash, bonus, hold) change of one acknowledged answer, from the answer alone."""
    kind, amount, split = doc["kind"], doc["amount"], doc.get("split") or {"cash": 0, "bonus": 0}
    if kind == "deposit":
        return amount, 0, 0
    if kind == "bet":
        return -split["cash"], -split["bonus"], 0
    if kind in ("win", "rollback"):
        return split["cash"], split["bonus"], 0
    if kind == "withdrawal_hold":
        return -amount, 0, amount
    raise AssertionError(kind)


async def test_concurrent_clients_never_lose_or_double_money(service_settings: Any) -> None:
    app = build_app(service_settings(WalletSettings, house_shards=4, db_pool_size=20))
    rng = random.Random(20261124)
    players = [uuid.uuid4() for _ in range(PLAYERS)]
    acked: dict[str, dict[str, Any]] = {}
    refusals: dict[str, int] = defaultdict(int)
    bets: list[tuple[str, uuid.UUID]] = []

    async with running(app) as client:
        def headers(path: str) -> dict[str, str]:  # fresh: a service token lives 60 s, a slow run lasts longer
            return as_service(app, caller_of(path))

        async def send(path: str, body: dict[str, Any]) -> None:
            key = body["idempotency_key"]
            tries = 1 + (rng.random() < 0.3)
            for _ in range(tries):
                together = rng.random() < 0.2
                if together:  # the same key twice at once: one waits on the other's key row, then replays
                    rs = await asyncio.gather(*[client.post(W + path, json=body, headers=headers(path))
                                               for _ in range(2)])
                else:
                    rs = [await client.post(W + path, json=body, headers=headers(path))]
                for r in rs:
                    assert r.status_code in (200, 402, 404, 409), r.text
                    if r.status_code == 200:
                        doc = r.json()
                        assert acked.setdefault(key, doc) == doc, "a replay answered differently"
                        if doc["kind"] == "bet":
                            bets.append((key, body["player_id"]))
                    else:
                        slug = r.json()["type"].rsplit("/", 1)[-1]
                        assert slug in ("insufficient-funds", "round-settled", "round-closed", "bet-rolled-back",
                                        "bet-not-found"), r.text
                        # a refusal is not stored (the key stays free), but once acknowledged a key only replays;
                        # within a simultaneous pair the refused one may have run first
                        assert together or key not in acked, "an acknowledged key was refused later"
                        refusals[slug] += 1

        async def worker(n: int) -> None:
            owners: dict[str, str] = {}  # a round is one player's: its bets and wins name that player
            for i in range(OPS_PER_CLIENT):
                rnd = f"c{n}-r{i // 3}"
                p = owners.setdefault(rnd, str(rng.choice(players)))
                key = f"c{n}-{i}-{uuid.uuid4().hex[:6]}"
                roll = rng.random()
                money = {"idempotency_key": key, "player_id": p, "currency": "EUR"}
                if roll < 0.15:
                    await send("/deposits", {**money, "amount": rng.randint(100, 5000)})
                elif roll < 0.55:
                    await send("/bets", {**money, "amount": rng.randint(1, 400), "round_id": rnd, "game_id": "g",
                                         "provider": "rgs"})
                elif roll < 0.75:
                    await send("/wins", {**money, "amount": rng.randint(0, 600), "round_id": rnd, "game_id": "g",
                                         "provider": "rgs", "close_round": rng.random() < 0.3})
                elif roll < 0.92 and bets:
                    bet_key, owner = rng.choice(bets)  # possibly another client's bet: races its win
                    await send("/rollbacks", {**money, "player_id": owner, "bet_idempotency_key": bet_key,
                                              "provider": "rgs"})
                else:
                    await send("/withdrawals", {**money, "amount": rng.randint(1, 300)})

        await asyncio.gather(*[worker(n) for n in range(CLIENTS)])
        report = (await client.get(W + "/reconciliation", headers=headers("/reconciliation"))).json()
        assert report["ok"], report["breaches"]

        async with app.state.runtime.database.session() as s:
            rows = dict((await s.execute(text(
                "SELECT idempotency_key, id FROM transactions WHERE idempotency_key = ANY(:k)"),
                {"k": list(acked)})).tuples().all())
            total = (await s.execute(text("SELECT count(*) FROM transactions"))).scalar_one()
        assert total == len(acked), "a transaction exists that no client was told about (or one is missing)"
        assert {k: str(v) for k, v in rows.items()} == {k: d["transaction_id"] for k, d in acked.items()}

        expected: dict[str, list[int]] = {str(p): [0, 0, 0] for p in players}
        for doc in acked.values():
            for i, delta in enumerate(effect(doc)):
                expected[doc["player_id"]][i] += delta
        for p in players:
            got = (await client.get(f"{W}/players/{p}/balances/EUR",
                                      headers=headers(f"/players/{p}/balances/EUR"))).json()
            assert [got["cash"], got["bonus"], got["withdrawal_hold"]] == expected[str(p)]
    # the run really exercised the races it claims to
    assert len(acked) > CLIENTS * OPS_PER_CLIENT // 2
    assert sum(1 for d in acked.values() if d["kind"] == "rollback" and not d["noop"]) > 10
    assert refusals["round-settled"] + refusals["round-closed"] > 0
