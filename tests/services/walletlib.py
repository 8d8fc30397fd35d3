"""The wallet's internal API as its callers (games, payments, bonus) use it, for the service tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from gameplane.contracts.players import ProtectionChanged
from gameplane.devtools.testing import as_service, as_staff
from gameplane.kit.events import Envelope

W = "/internal/wallet"
FINANCE = "finance-clerk"


def caller_of(path: str) -> str:
    """The service that really makes this internal call (each route accepts only its callers)."""
    path = path.removeprefix(W)
    if path.startswith("/players/") and "/deposit-allowance/" in path:
        return "payments"
    if path.startswith("/players/") and "/grants/" in path:
        return "bonus"
    if path.startswith("/bonuses/") and path.endswith("/free-spin-wins"):
        return "games"
    if path.startswith(("/bets", "/wins", "/rollbacks")) or (path.startswith("/players/") and path.count("/") == 4):
        return "games"
    if path.startswith(("/deposits", "/withdrawals", "/chargebacks", "/fees")):
        return "payments"
    if path.startswith("/bonuses"):
        return "bonus"
    return "backoffice"  # adjustments, reconciliation, histories


class Wallet:
    """A thin caller of the wallet's internal API (as the games/payments/bonus services are)."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    def headers(self, path: str) -> dict[str, str]:
        """A fresh service token per call (one lives 60 s, a slow module outlives it), of the
        service that makes this call."""
        return as_service(self.app, caller_of(path))

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = await self.client.post(W + path, json=body, headers=self.headers_for(path))
        assert r.status_code == status, r.text
        return r.json()  # type: ignore[no-any-return]

    def headers_for(self, path: str) -> dict[str, str]:
        """Adjustments are a back-office action: the back office calls for a finance staff member."""
        if path == "/adjustments":
            return as_staff(self.app, "finance", username=FINANCE)
        return self.headers(path)

    async def get(self, path: str, status: int = 200, **params: Any) -> Any:
        r = await self.client.get(W + path, params=params, headers=self.headers(path))
        assert r.status_code == status, r.text
        return r.json()

    async def deposit(self, player: uuid.UUID, amount: int, key: str | None = None, **kw: Any) -> dict[str, Any]:
        return await self.post("/deposits", {"idempotency_key": key or f"dep-{uuid.uuid4()}", "player_id": str(player),
                                             "currency": "EUR", "amount": amount, **kw}, kw.pop("status", 200))

    def bet_body(self, player: uuid.UUID, amount: int, round_id: str, key: str | None = None) -> dict[str, Any]:
        return {"idempotency_key": key or f"bet-{uuid.uuid4()}", "player_id": str(player), "currency": "EUR",
                "amount": amount, "round_id": round_id, "game_id": "starburst", "provider": "rgs"}

    def win_body(self, player: uuid.UUID, amount: int, round_id: str, close: bool = True,
                 key: str | None = None) -> dict[str, Any]:
        return {"idempotency_key": key or f"win-{uuid.uuid4()}", "player_id": str(player), "currency": "EUR",
                "amount": amount, "round_id": round_id, "game_id": "starburst", "provider": "rgs",
                "close_round": close}

    def rollback_body(self, player: uuid.UUID, bet_key: str, key: str | None = None) -> dict[str, Any]:
        return {"idempotency_key": key or f"rb-{uuid.uuid4()}", "player_id": str(player), "currency": "EUR",
                "bet_idempotency_key": bet_key, "provider": "rgs"}

    async def balance(self, player: uuid.UUID) -> dict[str, Any]:
        return await self.get(f"/players/{player}/balances/EUR")  # type: ignore[no-any-return]

    async def reconcile(self) -> dict[str, Any]:
        return await self.get("/reconciliation")  # type: ignore[no-any-return]


def slug(body: dict[str, Any]) -> str:
    return str(body["type"]).rsplit("/", 1)[-1]


async def protect(wallet: Wallet, player: uuid.UUID, revision: int, **fields: Any) -> None:
    """Publish a players.protection_changed on the real NATS and wait for the wallet to hold it."""
    bus = wallet.app.state.runtime.bus
    await bus.ready.wait()
    event = ProtectionChanged(player_id=player, revision=revision, currency="EUR", reason="test",
                              **{"limits": [], **fields})
    env = Envelope.wrap(event, "players")
    await bus.js.publish(event.subject(), env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    for _ in range(200):
        async with wallet.app.state.runtime.database.session() as s:
            rev = (await s.execute(text("SELECT revision FROM protection WHERE player_id = :p"),
                                   {"p": player})).scalar_one_or_none()
        if rev is not None and rev >= revision:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("protection event never arrived")
