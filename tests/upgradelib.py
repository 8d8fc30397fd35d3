"""Load for the upgrade tests: deposits, then bets and wins from many clients at once (so the fast
path forms batches), spread over one or more wallet processes, each answer kept; and the checks
that afterwards every acknowledged operation is in the ledger once and nothing else is."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gameplane.wallet.reconcile import reconcile

W = "/internal/wallet"


class Load:
    def __init__(self, players: int, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.players = [str(uuid.uuid4()) for _ in range(players)]
        self.acked: dict[str, dict[str, Any]] = {}
        self.refused: dict[int, int] = {}

    async def send(self, clients: Sequence[httpx.AsyncClient], path: str, body: dict[str, Any],
                   allowed: tuple[int, ...] = (200, 402, 404, 409)) -> None:
        """To a wallet picked at random each try: a client that got no answer (its wallet going
        away in a roll) sends the same key again, to whichever wallet is there now."""
        while True:
            try:
                r = await self.rng.choice(clients).post(W + path, json=body)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            if r.status_code == 503:
                await asyncio.sleep(0.05)
                continue
            assert r.status_code in allowed, (r.status_code, r.text)
            if r.status_code == 200:
                assert self.acked.setdefault(body["idempotency_key"], r.json()) == r.json()
            else:
                self.refused[r.status_code] = self.refused.get(r.status_code, 0) + 1
            return

    async def deposits(self, clients: Sequence[httpx.AsyncClient], amount: int = 100_000) -> None:
        await asyncio.gather(*(self.send(clients, "/deposits",
                                         {"idempotency_key": f"d-{p}", "player_id": p, "currency": "EUR",
                                          "amount": amount}, (200,))
                               for p in self.players))

    async def play(self, clients: Sequence[httpx.AsyncClient], rounds: int, tag: str,
                   until: asyncio.Event | None = None) -> None:
        """Every player plays `rounds` rounds (a bet, then a win or none), and on until `until` is
        set, all players at once; `clients` may change meanwhile (wallets joining and leaving)."""

        async def player(p: str) -> None:
            i = 0
            while i < rounds or (until is not None and not until.is_set()):
                i += 1
                rnd = {"player_id": p, "currency": "EUR", "round_id": f"{tag}-{i}", "game_id": "g", "provider": "rgs"}
                await self.send(clients, "/bets",
                                {**rnd, "idempotency_key": f"b-{tag}-{i}-{p}", "amount": self.rng.randint(1, 500)})
                if self.rng.random() < 0.6:
                    await self.send(clients, "/wins",
                                    {**rnd, "idempotency_key": f"w-{tag}-{i}-{p}", "amount": self.rng.randint(0, 900),
                                     "close_round": True})

        await asyncio.gather(*(player(p) for p in self.players))

    def expected_balances(self) -> dict[str, int]:
        cash = dict.fromkeys(self.players, 0)
        for d in self.acked.values():
            sign = 1 if d["kind"] in ("deposit", "win") else -1
            cash[d["player_id"]] += sign * (d["split"] or {"cash": d["amount"]})["cash"]
        return cash


async def ledger_check(database_url: str, load: Load) -> dict[str, Any]:
    """Reconciliation (gameplane.wallet.reconcile) of the whole database, plus the load's own account:
    the transactions are exactly the acknowledged ones, each player's cash and the house's balance
    what the answers add up to. Returns the report for a caller that expects breaches."""
    engine = create_async_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as s:
            report = (await reconcile(s)).model_dump(mode="json")
        async with engine.connect() as conn:
            rows = dict((await conn.execute(text("SELECT idempotency_key, id::text FROM transactions"))).tuples().all())
            cash = dict((await conn.execute(text(
                "SELECT owner, balance FROM accounts WHERE kind = 'cash' AND owner <> 'platform'"))).tuples().all())
            house = (await conn.execute(text(
                "SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner = 'platform' AND kind = 'house'"))).scalar()
    finally:
        await engine.dispose()
    report["transactions_match"] = rows == {k: d["transaction_id"] for k, d in load.acked.items()}
    report["balances_match"] = {p: cash.get(p, 0) for p in load.players} == load.expected_balances()
    stakes = sum(d["amount"] for d in load.acked.values() if d["kind"] == "bet")
    wins = sum(d["amount"] for d in load.acked.values() if d["kind"] == "win")
    report["house_matches"] = house == stakes - wins
    return report


def clean(report: dict[str, Any]) -> bool:
    return bool(report["ok"] and report["transactions_match"] and report["balances_match"]
                and report["house_matches"])
