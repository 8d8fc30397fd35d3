"""A platform for the bonus tests: the real wallet, sessions and games (local_platform: real
Postgres, NATS and HTTP between them) plus the bonus service on its own loopback port. Play goes
through games' canonical provider API as a game studio sends it (signed bets, wins, rollbacks),
so the wallet's events reach bonus over the real stream. Players are announced as the players
service announces them (`players.registered`, `players.protection_changed` on the stream).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
from fastapi import FastAPI
from paymentslib import eventually

from gameplane.bonus.app import build_app as build_bonus
from gameplane.bonus.settings import BonusSettings
from gameplane.contracts.games import signed_headers
from gameplane.contracts.players import PlayerRegistered, ProtectionChanged
from gameplane.devtools.inprocess import LocalPlatform, deposit, launch, listener, local_platform, served
from gameplane.devtools.testing import as_service, as_staff
from gameplane.kit.events import Envelope, Event

SECRET = "bonus-service-test-provider-secret"
TABLE_GAME = "roulette-royale"


async def publish_events(nats_url: str, *envs: Envelope) -> None:
    """Put envelopes on the stream as their producer's outbox relay does (Nats-Msg-Id: the event id)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for env in envs:
            await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    finally:
        await nc.close()


class Studio:
    """A game studio calling games' canonical provider API for one session."""

    def __init__(self, games_url: str, token: str, game_id: str) -> None:
        self.games_url, self.token, self.game_id = games_url, token, game_id

    async def send(self, op: str, **fields: Any) -> httpx.Response:
        body = json.dumps({"request_id": uuid.uuid4().hex, "token": self.token, **fields}).encode()
        async with httpx.AsyncClient(base_url=self.games_url, timeout=20) as http:
            return await http.post(f"/providers/rgs/{op}", content=body,
                                   headers=signed_headers(SECRET, f"/providers/rgs/{op}", body))

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        r = await self.send(op, **fields)
        assert r.status_code == 200, f"{op}: {r.status_code} {r.text}"
        return r.json()  # type: ignore[no-any-return]

    async def bet(self, amount: int, round_id: str, tx: str | None = None) -> str:
        tx = tx or uuid.uuid4().hex
        await self.call("bet", transaction_id=tx, round_id=round_id, game_id=self.game_id, amount=amount,
                        currency="EUR")
        return tx

    async def win(self, amount: int, round_id: str, closed: bool = True) -> None:
        await self.call("win", transaction_id=uuid.uuid4().hex, round_id=round_id, game_id=self.game_id,
                        amount=amount, currency="EUR", round_closed=closed)

    async def rollback(self, bet_tx: str) -> None:
        await self.call("rollback", transaction_id=uuid.uuid4().hex, bet_transaction_id=bet_tx)

    async def round(self, stake: int, win: int = 0) -> str:
        """One settled round: a bet and its closing win (0 for a loss)."""
        rid = f"r-{uuid.uuid4().hex[:12]}"
        await self.bet(stake, rid)
        await self.win(win, rid)
        return rid


@dataclass
class BonusPlatform:
    local: LocalPlatform
    nats_url: str
    settings: BonusSettings
    clock: ShiftedClock
    bonus: FastAPI | None = None
    url: str = ""
    campaign: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    # -- people -----------------------------------------------------------------------------------
    async def player(self, country: str = "MT", balance: int = 100_000, **protection: Any) -> uuid.UUID:
        pid = uuid.uuid4()
        await self.announce(pid, country, **protection)
        if balance:
            await deposit(self.local, pid, balance)
        return pid

    async def announce(self, pid: uuid.UUID, country: str = "MT", revision: int = 1, **protection: Any) -> None:
        events: list[Event] = [
            PlayerRegistered(player_id=pid, email=f"{pid.hex[:10]}@example.com", country=country, currency="EUR",
                             date_of_birth="1990-01-01", registered_at=datetime.now(UTC)),  # type: ignore[arg-type]
            ProtectionChanged(player_id=pid, revision=revision, currency="EUR", limits=[], reason="test",
                              **protection)]
        await publish_events(self.nats_url, *(Envelope.wrap(e, "players") for e in events))
        await eventually(lambda: self.known(pid, protection), what=f"bonus knows player {pid}")

    async def known(self, pid: uuid.UUID, protection: dict[str, Any]) -> bool:
        assert self.bonus is not None
        async with self.bonus.state.runtime.database.session() as s:
            from sqlalchemy import text
            row = (await s.execute(text("SELECT registered_at, self_excluded_until, timeout_until FROM players "
                                        "WHERE player_id = :p"), {"p": pid})).one_or_none()
        if row is None or row.registered_at is None:
            return False
        return all(getattr(row, k) == v for k, v in protection.items())

    async def deposits_seen(self, pid: uuid.UUID, n: int) -> None:
        """Wait until bonus has consumed the player's first `n` deposits (their events)."""
        async def seen() -> bool:
            from sqlalchemy import text
            assert self.bonus is not None
            async with self.bonus.state.runtime.database.session() as s:
                got = (await s.execute(text("SELECT deposits FROM players WHERE player_id = :p"), {"p": pid})
                       ).scalar_one_or_none()
            return (got or 0) >= n
        await eventually(seen, what=f"bonus saw {n} deposits of {pid}")

    async def studio(self, pid: uuid.UUID, game_id: str = "fruit-fives") -> Studio:
        session = await launch(self.local, pid, game_id)
        return Studio(self.local.urls["games"], session["token"], game_id)

    # -- bonus's API --------------------------------------------------------------------------------
    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    def staff(self, *roles: str) -> dict[str, str]:
        assert self.bonus is not None
        return as_staff(self.bonus, *(roles or ("finance",)))  # type: ignore[arg-type]

    def as_player(self, pid: uuid.UUID) -> dict[str, str]:
        assert self.bonus is not None
        return as_service(self.bonus, "gateway", pid)

    async def call(self, method: str, path: str, status: int = 200, headers: dict[str, str] | None = None,
                   **kw: Any) -> Any:
        async with self.http() as http:
            r = await http.request(method, path, headers=headers if headers is not None else self.staff(), **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    async def offer(self, kind: str = "no_deposit", **terms: Any) -> str:
        """A live offer (created and its version 1 published by finance staff): its id. Wagering
        10x unless the terms say otherwise."""
        if self.campaign is None:
            self.campaign = (await self.call("POST", "/internal/bonus/campaigns", 201,
                                             json={"name": "tests"}))["campaign_id"]
        body = {"name": f"{kind} offer", "kind": kind, "currency": "EUR", "wagering_multiplier": 10, **terms}
        offer = await self.call("POST", f"/internal/bonus/campaigns/{self.campaign}/offers", 201, json=body)
        await self.call("POST", f"/internal/bonus/offers/{offer['offer_id']}/publish", json={"version": 1})
        return offer["offer_id"]  # type: ignore[no-any-return]

    async def opt_in(self, pid: uuid.UUID, offer_id: str, status: int = 201) -> Any:
        return await self.call("POST", f"/v1/bonus/offers/{offer_id}/opt-in", status, headers=self.as_player(pid))

    async def grants(self, pid: uuid.UUID) -> list[dict[str, Any]]:
        return await self.call("GET", "/v1/bonus/grants", headers=self.as_player(pid))  # type: ignore[no-any-return]

    async def grant(self, grant_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/internal/bonus/grants/{grant_id}")  # type: ignore[no-any-return]

    async def grant_until(self, grant_id: str, what: str, **want: Any) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            g = await self.grant(grant_id)
            return g if all(_get(g, k) == v for k, v in want.items()) else None
        return await eventually(check, what=f"{what}: {want}")  # type: ignore[no-any-return]

    async def sweep(self) -> None:
        """One round of the worker now (expiry, owed calls, cashback), as its timer would run it."""
        from gameplane.bonus import worker
        assert self.bonus is not None
        await worker.sweep_once(self.bonus.state.runtime)

    # -- the wallet's books ---------------------------------------------------------------------------
    async def balance(self, pid: uuid.UUID) -> dict[str, int]:
        async with httpx.AsyncClient(base_url=self.local.urls["wallet"], timeout=20) as http:
            r = await http.get(f"/internal/wallet/players/{pid}/balances/EUR",
                               headers=self.local.headers("wallet", caller="games"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def wallet(self, path: str, body: dict[str, Any], caller: str = "payments") -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.local.urls["wallet"], timeout=20) as http:
            r = await http.post(path, json=body, headers=self.local.headers("wallet", caller=caller))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # -- the bonus service itself -----------------------------------------------------------------------
    async def start(self) -> None:
        """Serve bonus (again) on a fresh port, on the same database: a start or a restart."""
        assert self.bonus is None, "bonus is running"
        stack = contextlib.AsyncExitStack()
        sock = listener()
        stack.callback(sock.close)
        app = build_bonus(self.settings, clock=self.clock)
        self.url = await stack.enter_async_context(served(app, sock))
        self.bonus, self.extras["stack"] = app, stack

    async def stop(self) -> None:
        stack = self.extras.pop("stack")
        await stack.aclose()
        self.bonus = None


class ShiftedClock:
    """The wall clock, moved forward by `advance` (grants expire without the test sleeping)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("__"):
        doc = doc[part]
    return doc


@contextlib.asynccontextmanager
async def bonus_platform(pg: Any, nats_url: str, *, with_rgs: bool = False,
                         **bonus_overrides: Any) -> AsyncIterator[BonusPlatform]:
    """`with_rgs`: the RGS simulator too (the studio that takes free-spin awards and plays them)."""
    dbs = {}
    for name in ("wallet", "sessions", "games", "bonus"):
        db = f"bonus_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform({k: v for k, v in dbs.items() if k != "bonus"}, nats_url, provider_secret=SECRET,
                              sessions_overrides={"jurisdiction": "mga"}, with_rgs=with_rgs,
                              rgs_overrides={"seed": 7} if with_rgs else None) as local:
        # a table game next to the bundled slot, for the contribution table
        async with httpx.AsyncClient(base_url=local.urls["games"], timeout=20) as http:
            r = await http.put(f"/internal/games/{TABLE_GAME}", headers=local.headers("games", caller="backoffice"),
                               json={"provider": "rgs", "title": "Roulette Royale", "category": "table",
                                     "rtp_bp": 9730, "stakes": {"EUR": {"min": 10, "max": 100_000}},
                                     "jurisdictions": ["mga"], "max_win_multiplier": 36})
            assert r.status_code == 200, r.text
        settings = BonusSettings(database_url=dbs["bonus"], nats_url=nats_url, endpoints=local.urls,
                                 log_level="WARNING", sweep_interval_seconds=0.2, **bonus_overrides)
        platform = BonusPlatform(local, nats_url, settings, ShiftedClock())
        await platform.start()
        try:
            yield platform
        finally:
            if platform.bonus is not None:
                await platform.stop()


