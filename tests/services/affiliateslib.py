"""The affiliates service under test: the app on real PostgreSQL and NATS with a manual clock, and
the affiliate postback simulator behind a real loopback listener; events are published to
JetStream the way the players and wallet services publish them."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import nats
from fastapi import FastAPI
from paymentslib import eventually

from gameplane.affiliates.app import build_app
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.contracts.players import PlayerRegistered
from gameplane.contracts.wallet import (
    BetPlaced,
    BonusConverted,
    DepositCredited,
    FeeCharged,
    RolledBack,
    WinSettled,
)
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import ManualClock, as_service, as_staff, running
from gameplane.kit.events import Envelope, Event
from gameplane.simulators.postbacks.app import build_app as build_simulator

PROBLEM = "https://gameplane.io/problems/"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def utc(y: int, m: int, d: int, h: int = 12, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=UTC)


@dataclass
class Affiliates:
    app: FastAPI
    http: httpx.AsyncClient
    clock: ManualClock
    nats_url: str
    seq: int = field(default=0)

    # ---- back office ----
    async def create(self, deal: dict[str, Any], *, parent: str | None = None, override_bp: int = 0,
                     postback_url: str | None = None, expect: int = 201) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"aff-{uuid.uuid4().hex[:6]}", "deal": deal, "override_bp": override_bp}
        if parent:
            body["parent_id"] = parent
        if postback_url:
            body["postback_url"] = postback_url
        r = await self.http.post("/internal/affiliates/affiliates", json=body,
                                 headers=as_staff(self.app, "finance", username="fiona"))
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def link(self, affiliate_id: str, landing: str = "https://casino.example/welcome?lang=en") -> str:
        r = await self.http.post(f"/internal/affiliates/affiliates/{affiliate_id}/links",
                                 json={"landing_url": landing}, headers=as_staff(self.app, "finance"))
        assert r.status_code == 201, r.text
        return r.json()["code"]  # type: ignore[no-any-return]

    async def click(self, code: str, *, ua: str | None = BROWSER, ip: str = "203.0.113.7",
                    **subs: str) -> httpx.Response:
        headers = {**as_service(self.app, "gateway"), "X-Client-Ip": ip}
        if ua is not None:
            headers["User-Agent"] = ua
        return await self.http.get(f"/v1/affiliates/track/{code}", params=subs, headers=headers)

    async def click_id(self, code: str, **kw: Any) -> str:
        r = await self.click(code, **kw)
        assert r.status_code == 302, r.text
        query = httpx.URL(r.headers["location"]).params
        return query["click_id"]

    async def attribution(self, player: uuid.UUID) -> dict[str, Any]:
        async def seen() -> dict[str, Any] | None:
            r = await self.http.get(f"/internal/affiliates/players/{player}", headers=as_staff(self.app, "support"))
            return r.json() if r.status_code == 200 else None
        return await eventually(seen, what=f"attribution of {player}")  # type: ignore[no-any-return]

    async def statement(self, affiliate_id: str, month: str) -> dict[str, Any]:
        r = await self.http.get(f"/internal/affiliates/affiliates/{affiliate_id}/statements/{month}",
                                headers=as_staff(self.app, "finance"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def close(self, month: str) -> httpx.Response:
        return await self.http.post(f"/internal/affiliates/statements/{month}/close",
                                    headers=as_staff(self.app, "finance", username="fiona"))

    # ---- events, as players and the wallet publish them ----
    async def emit(self, *events: Event, envelopes: list[Envelope] | None = None,
                   redeliver: bool = False) -> list[Envelope]:
        """Publish events (or these envelopes again). `redeliver`: under another message id, so the
        stream stores the copy and only the consumer's own de-duplication can drop it."""
        nc = await nats.connect(self.nats_url)
        out = []
        try:
            js = nc.jetstream()
            for env in envelopes or [Envelope.wrap(e, "test") for e in events]:
                msg_id = f"{env.id}-again-{uuid.uuid4().hex[:6]}" if redeliver else str(env.id)
                await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
                out.append(env)
        finally:
            await nc.close()
        return out

    async def register(self, click_id: str | None, at: datetime, *, currency: str = "EUR") -> uuid.UUID:
        player = uuid.uuid4()
        await self.emit(PlayerRegistered(player_id=player, email=f"{player.hex[:8]}@mail.example", country="MT",
                                         currency=currency, date_of_birth=date(1990, 5, 17), registered_at=at,
                                         affiliate_click_id=click_id))
        return player


class Money:
    """Wallet events of one player, dated by the test (the ledger's own dating)."""

    def __init__(self, player: uuid.UUID, currency: str = "EUR") -> None:
        self.player, self.currency = player, currency

    def _base(self, amount: int, cash: int, bonus: int, at: datetime) -> dict[str, Any]:
        return {"transaction_id": uuid.uuid4(), "player_id": self.player, "currency": self.currency,
                "amount": amount, "cash": cash, "bonus": bonus, "occurred_at": at}

    def deposit(self, amount: int, at: datetime, first: bool = True) -> DepositCredited:
        return DepositCredited(**self._base(amount, amount, 0, at), psp="simpsp", first_deposit=first)

    def bet(self, amount: int, at: datetime, bonus: int = 0) -> BetPlaced:
        return BetPlaced(**self._base(amount, amount - bonus, bonus, at), round_id=uuid.uuid4().hex,
                         game_id="starburst", provider="rgs")

    def win(self, amount: int, at: datetime, bonus: int = 0) -> WinSettled:
        return WinSettled(**self._base(amount, amount - bonus, bonus, at), round_id=uuid.uuid4().hex,
                          game_id="starburst", provider="rgs", round_closed=True)

    def rollback(self, bet: BetPlaced, at: datetime) -> RolledBack:
        return RolledBack(**self._base(bet.amount, bet.cash, bet.bonus, at), bet_transaction_id=bet.transaction_id,
                          round_id=bet.round_id, game_id=bet.game_id, provider="rgs")

    def converted(self, cash: int, at: datetime) -> BonusConverted:
        return BonusConverted(**self._base(cash, cash, 0, at), grant_id=uuid.uuid4().hex)

    def fee(self, amount: int, at: datetime) -> FeeCharged:
        return FeeCharged(**self._base(amount, 0, 0, at), psp="simpsp", psp_reference=uuid.uuid4().hex,
                          payment_reference=uuid.uuid4().hex)


@contextlib.asynccontextmanager
async def affiliates_app(settings_factory: Any, nats_url: str, start: datetime | ManualClock,
                         settings: AffiliatesSettings | None = None, **overrides: Any) -> AsyncIterator[Affiliates]:
    """The app on a fresh database (or on `settings`' database, to start it again)."""
    clock = start if isinstance(start, ManualClock) else ManualClock(start)
    app = build_app(settings or settings_factory(AffiliatesSettings, **overrides), clock=clock)
    async with running(app) as http:
        yield Affiliates(app, http, clock, nats_url)


@dataclass
class Receiver:
    """The postback simulator on a loopback port; `down()` stops listening, `up()` listens again
    on the same port."""

    port: int
    http: httpx.AsyncClient
    _stack: contextlib.AsyncExitStack | None = None
    _app: FastAPI | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/postbacks"

    async def up(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
        self._stack = contextlib.AsyncExitStack()
        assert self._app is not None
        await self._stack.enter_async_context(served(self._app, sock))

    async def down(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()
        self._stack = None

    async def received(self) -> list[dict[str, Any]]:
        return (await self.http.get(f"http://127.0.0.1:{self.port}/control/received")).json()  # type: ignore[no-any-return]

    async def rejected(self) -> list[dict[str, Any]]:
        return (await self.http.get(f"http://127.0.0.1:{self.port}/control/rejected")).json()  # type: ignore[no-any-return]

    async def control(self, method: str, path: str, body: dict[str, Any]) -> None:
        r = await self.http.request(method, f"http://127.0.0.1:{self.port}/control/{path}", json=body)
        assert r.status_code == 200, r.text


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    sock = listener()
    port = sock.getsockname()[1]
    app = build_simulator()
    async with httpx.AsyncClient(timeout=5.0) as http:
        rec = Receiver(port, http, None, app)
        await rec.up(sock)
        try:
            yield rec
        finally:
            if rec._stack is not None:
                await rec.down()
