"""The provider conformance kit: 100 % against the real play path (games + sessions + wallet on real
Postgres and NATS), and each check failing against a platform double that breaks its rule."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gameplane.contracts.games import (
    PROVIDER_OPERATIONS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_valid,
    unix_timestamp,
)
from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.simulators.rgs.client import PlatformClient
from gameplane.simulators.rgs.conformance import Kit, Reply, SessionFactory, check_names, platform_awards

SECRET = "conformance-test-provider-secret"


def platform_sessions(p: LocalPlatform, nats_url: str, balance: int = 5000) -> SessionFactory:
    async def factory(ttl: int | None) -> str:
        player = await new_player(p, nats_url, balance)
        return str((await launch(p, player, ttl_seconds=ttl))["token"])

    return factory


@pytest.fixture
def databases(new_database: Callable[..., str]) -> dict[str, str]:
    return {name: new_database(name) for name in ("wallet", "sessions", "games")}


async def test_conformance_passes_against_the_local_platform(databases: dict[str, str], nats_server: Any) -> None:
    # with the studio running: games forwards the free-spin awards to it
    async with local_platform(databases, nats_server.url, provider_secret=SECRET, with_rgs=True) as p:
        client = PlatformClient(p.urls["games"], "rgs", SECRET, timeout=10, attempts=1)
        awards = platform_awards(p.urls["wallet"], p.urls["games"], p.identities.key("bonus"))
        try:
            results = await Kit(client, platform_sessions(p, nats_server.url), awards=awards).run()
        finally:
            await client.aclose()
    failed = [(r.name, r.detail) for r in results if not r.passed]
    assert not failed, failed
    assert [r.name for r in results] == check_names()


# ---- the broken double: a small canonical platform whose rules can be switched off one by one ----------

class BrokenPlatform:
    """In-memory canonical provider API. With no fault it follows every rule; each fault named after a
    conformance check breaks exactly the rule that check guards."""

    def __init__(self, fault: str | None) -> None:
        self.fault = fault
        self.balances: dict[str, int] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.txns: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        self.rounds: dict[str, dict[str, Any]] = {}
        self.tombstones: set[str] = set()
        self.awards: dict[str, dict[str, Any]] = {}
        self.lock = asyncio.Lock()
        self.app = FastAPI()
        self.app.post("/providers/{provider}/{op}")(self.handle)

    def new_session(self, balance: int, ttl: int | None) -> str:
        token, player = uuid.uuid4().hex, uuid.uuid4()
        self.balances[str(player)] = balance
        self.sessions[token] = {"player": str(player), "expires": datetime.now(UTC) + timedelta(seconds=ttl or 3600)}
        return token

    def broken(self, rule: str) -> bool:
        return self.fault == rule

    async def award(self, body: dict[str, Any]) -> Reply:
        """The platform granting free spins (what bonus asks of games)."""
        seen = self.awards.get(body["award_id"])
        if seen is not None and seen["body"] != body and not self.broken("free-spin award accepted"):
            return Reply(409, {"type": "https://gameplane.io/problems/free-spin-award-exists"})
        if seen is None or seen["body"] != body:
            seen = self.awards[body["award_id"]] = {"body": body, "played": 0,
                                                    "expires": datetime.fromisoformat(body["expires_at"])}
        return Reply(200, {**body, "state": "awarded", "spins_played": seen["played"], "won": 0})

    def free_spin_refusal(self, call: dict[str, Any], player: str) -> tuple[int, dict[str, Any]] | None:
        if self.broken("free-spin win without a bet"):
            return self.error(404, "bet-not-found", player)  # as a platform that pays only after a bet
        award = self.awards.get(call["free_spin_award_id"])
        lax = self.broken("free-spin award unknown or expired")
        if award is None:
            return None if lax else self.error(404, "free-spin-award-not-found", player)
        if award["body"]["player_id"] != player and not self.broken("free-spin award of another player"):
            return self.error(403, "free-spin-award-mismatch", player)
        if datetime.now(UTC) >= award["expires"] and not lax:
            return self.error(409, "free-spin-award-expired", player)
        if award["played"] >= award["body"]["spins"] and not self.broken("free spins exhausted"):
            return self.error(409, "free-spins-exhausted", player)
        award["played"] += 1
        return None

    def replays(self, call: dict[str, Any]) -> bool:
        return not self.broken("duplicates") and not (self.broken("free-spin replay") and "free_spin_award_id" in call)

    def error(self, status: int, code: str, player: str | None = None) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"type": f"https://gameplane.io/problems/{code}", "status": status, "code": code}
        if player is not None:
            body["balance"] = self.balances[player]
        return status, body

    async def handle(self, provider: str, op: str, request: Request) -> JSONResponse:
        raw = await request.body()
        stamp, sig = request.headers.get(TIMESTAMP_HEADER) or "", request.headers.get(SIGNATURE_HEADER)
        # Broken: a signature made for any endpoint will do (as when only the body was signed).
        paths = [f"/providers/{provider}/{o}" for o in PROVIDER_OPERATIONS] \
            if self.broken("signature bound to its endpoint") else [request.url.path]
        if not self.broken("bad signature") and \
                not any(signature_valid(SECRET, "POST", path, stamp, raw, sig) for path in paths):
            return JSONResponse(self.error(401, "invalid-signature")[1], status_code=401)
        call = json.loads(raw)
        if not self.broken("clock skew"):
            sent = unix_timestamp(stamp)
            if sent is None:
                return JSONResponse(self.error(401, "invalid-signature")[1], status_code=401)
            if abs(sent - time.time()) > 300:
                return JSONResponse(self.error(401, "stale-request")[1], status_code=401)
        digest = json.dumps({k: v for k, v in call.items() if k != "timestamp"}, sort_keys=True)
        if call["request_id"] in self.requests and self.replays(call):
            seen_digest, status, body = self.requests[call["request_id"]]
            if seen_digest != digest:
                return JSONResponse(self.error(409, "request-id-reused")[1], status_code=409)
            return JSONResponse(body, status_code=status)
        status, body = await self.operate(op, call)
        self.requests[call["request_id"]] = (digest, status, body)
        return JSONResponse(body, status_code=status)

    async def operate(self, op: str, call: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        session = self.sessions.get(call["token"])
        if session is None:
            return self.error(401, "invalid-token")
        player = session["player"]
        expired = datetime.now(UTC) >= session["expires"]
        answer = {"request_id": call["request_id"], "player_id": player, "currency": "EUR", "game_id": "fruit-fives"}
        if op in ("authenticate", "balance"):
            if op == "authenticate" and expired:
                return self.error(403, "session-expired", player)
            return 200, {**answer, "balance": self.balances[player]}
        tx = call["transaction_id"]
        content = {k: v for k, v in call.items() if k not in ("timestamp", "request_id")}
        if tx in self.txns and self.replays(call):
            if self.txns[tx][0] != json.dumps(content, sort_keys=True):
                if not self.broken("conflicting duplicates"):
                    return self.error(409, "duplicate-transaction", player)
            else:
                return 200, {**self.txns[tx][1], "request_id": call["request_id"]}
        rnd = self.rounds.setdefault(call.get("round_id") or tx, {"closed": False, "wins": 0})
        if op == "bet":
            if tx in self.tombstones and not self.broken("late rollbacks"):
                return self.error(409, "bet-rolled-back", player)
            if expired:
                return self.error(403, "session-expired", player)
            if rnd["closed"] and not self.broken("bet on closed round"):
                return self.error(409, "round-closed", player)
            if self.broken("parallel debits"):
                ok = self.balances[player] >= call["amount"]
                await asyncio.sleep(0.01)  # check, then act: the race the kit must catch
            else:
                ok = self.balances[player] >= call["amount"]
            if not ok:
                return self.error(402, "insufficient-funds", player)
            self.balances[player] -= call["amount"]
        elif op == "win":
            if expired and self.broken("win after session expiry"):
                return self.error(403, "session-expired", player)
            if rnd["closed"]:
                return self.error(409, "round-closed", player)
            if "free_spin_award_id" in call:
                refusal = self.free_spin_refusal(call, player)
                if refusal is not None:
                    return refusal
            self.balances[player] += call["amount"]
            rnd["wins"] += 1
            rnd["closed"] = bool(call.get("round_closed", True))
        elif op == "rollback":
            bet = self.txns.get(call["bet_transaction_id"])
            if bet is None:
                self.tombstones.add(call["bet_transaction_id"])
            else:
                bet_round = self.rounds[bet[2]["round_id"]]
                if bet_round["wins"] and not self.broken("rollback after win"):
                    return self.error(409, "round-settled", player)
                if not bet[2].get("rolled_back"):
                    self.balances[player] += bet[2]["amount"]
                    bet[2]["rolled_back"] = True
        out = {**answer, "balance": self.balances[player], "transaction_id": tx}
        self.txns[tx] = (json.dumps(content, sort_keys=True), out, dict(content))
        return 200, out


async def run_against_double(fault: str | None, only: list[str] | None = None) -> dict[str, bool]:
    double = BrokenPlatform(fault)

    async def factory(ttl: int | None) -> str:
        return double.new_session(5000, ttl)

    client = PlatformClient("http://double", "rgs", SECRET, attempts=1,
                            transport=httpx.ASGITransport(app=double.app))
    try:
        results = await Kit(client, factory, awards=double.award).run(only)
    finally:
        await client.aclose()
    return {r.name: r.passed for r in results}


async def test_the_double_without_faults_passes_every_check() -> None:
    outcome = await run_against_double(None)
    assert outcome == {name: True for name in check_names()}


@pytest.mark.parametrize("check", check_names())
async def test_each_check_fails_when_its_rule_is_broken(check: str) -> None:
    outcome = await run_against_double(check, only=[check])
    assert outcome == {check: False}
