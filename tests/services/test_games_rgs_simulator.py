"""The RGS simulator plays Fruit Fives through the platform like a third-party studio: launch URL
from sessions, signed calls to games, money in the wallet — including lost answers, retried with
the same transaction id, and bets whose answer never came, rolled back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.devtools.testing import stored_events

SECRET = "rgs-service-test-provider-secret"


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"rgs_sim_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET, with_rgs=True,
                              rgs_overrides={"seed": 42, "retry_backoff_seconds": 0.01}) as p:
        p.extras["nats"] = nats_server.url
        yield p


class LossyNetwork(httpx.AsyncBaseTransport):
    """Delivers every request to the platform but loses chosen answers on the way back."""

    def __init__(self, lose: Any) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose = lose  # (operation, body, attempt) -> bool
        self.attempts: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = request.url.path.rsplit("/", 1)[-1]
        body = json.loads(request.content)
        n = self.attempts[body["request_id"]] = self.attempts.get(body["request_id"], 0) + 1
        resp = await self.inner.handle_async_request(request)
        if self.lose(operation, body, n):
            await resp.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return resp


def use_network(platform: LocalPlatform, network: httpx.AsyncBaseTransport | None) -> None:
    rt = platform.apps["rgs"].state.runtime
    rt.state.pop("client", None)
    rt.state["transport"] = network


async def open_table(platform: LocalPlatform, balance: int) -> tuple[uuid.UUID, str, httpx.AsyncClient]:
    player = await new_player(platform, platform.extras["nats"], balance)
    session = await launch(platform, player)
    assert session["launch_url"].startswith(platform.urls["rgs"] + "/launch?token=")
    async with httpx.AsyncClient(timeout=60) as browser:
        opened = await browser.get(session["launch_url"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["balance"] == balance and opened.json()["player_id"] == str(player)
    return player, session["token"], httpx.AsyncClient(timeout=120)


async def wallet_cash(platform: LocalPlatform, player: uuid.UUID) -> int:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"]) as http:
        r = await http.get(f"/internal/wallet/players/{player}/balances/EUR",
                           headers=platform.headers("wallet", caller="games"))
    return int(r.json()["cash"])


async def games_rounds(platform: LocalPlatform, player: uuid.UUID) -> list[tuple[str, int, int]]:
    async with platform.apps["games"].state.runtime.database.session() as s:
        rows = (await s.execute(text("SELECT status, bet_total, win_total FROM rounds WHERE player_id = :p"),
                                {"p": player})).all()
    return [tuple(r) for r in rows]


async def test_rgs_plays_a_hundred_rounds_and_the_money_agrees(platform: LocalPlatform) -> None:
    use_network(platform, None)
    player, token, rgs = await open_table(platform, 10_000)
    async with rgs:
        r = await rgs.post(f"{platform.urls['rgs']}/sessions/{token}/spins", json={"count": 100, "stake": 50})
    out = r.json()
    assert (out["played"], out["settled"], out["rolled_back"], out["pending"]) == (100, 100, 0, 0)
    assert out["balance"] == 10_000 - out["staked"] + out["won"] == await wallet_cash(platform, player)
    rounds = await games_rounds(platform, player)
    assert len(rounds) == 100 and all(status == "closed" for status, _, _ in rounds)
    assert sum(b for _, b, _ in rounds) == out["staked"] == 5000
    assert sum(w for _, _, w in rounds) == out["won"]


async def test_lost_answers_are_retried_with_the_same_transaction(platform: LocalPlatform) -> None:
    # Every first answer (bets and wins) is lost: each call lands, and its retry must be answered from records.
    network = LossyNetwork(lambda op, body, n: op in ("bet", "win") and n == 1)
    use_network(platform, network)
    player, token, rgs = await open_table(platform, 5_000)
    async with rgs:
        out = (await rgs.post(f"{platform.urls['rgs']}/sessions/{token}/spins", json={"count": 20, "stake": 50})).json()
    assert (out["played"], out["settled"], out["rolled_back"]) == (20, 20, 0)
    assert out["balance"] == 5_000 - 20 * 50 + out["won"] == await wallet_cash(platform, player)
    assert sum(n for n in network.attempts.values()) >= 80


async def test_bets_never_answered_are_rolled_back(platform: LocalPlatform) -> None:
    doomed: set[str] = set()
    seen: list[str] = []

    def lose(op: str, body: dict[str, Any], n: int) -> bool:
        # bets number 2, 5 and 8 never get an answer, however often they are retried
        if op != "bet":
            return False
        if body["transaction_id"] not in seen:
            seen.append(body["transaction_id"])
            if len(seen) in (2, 5, 8):
                doomed.add(body["transaction_id"])
        return body["transaction_id"] in doomed

    use_network(platform, LossyNetwork(lose))
    player, token, rgs = await open_table(platform, 5_000)
    async with rgs:
        out = (await rgs.post(f"{platform.urls['rgs']}/sessions/{token}/spins", json={"count": 15, "stake": 50})).json()
    assert out["rolled_back"] == len(doomed) == 3
    assert out["settled"] == 15 - len(doomed)
    assert out["balance"] == 5_000 - out["settled"] * 50 + out["won"] == await wallet_cash(platform, player)
    rounds = await games_rounds(platform, player)
    assert sum(b for _, b, _ in rounds) == out["settled"] * 50  # rolled-back stakes netted out of their rounds


async def test_reality_checks_show_the_net_position_of_the_session(platform: LocalPlatform) -> None:
    import asyncio
    from datetime import datetime, timedelta

    from gameplane.devtools.inprocess import announce_player, deposit
    from gameplane.sessions import sweeper

    use_network(platform, None)
    player = uuid.uuid4()
    await announce_player(platform.extras["nats"], player, reality_check_minutes=10)
    await deposit(platform, player, 3_000)
    session = await launch(platform, player)
    assert session["reality_check_minutes"] == 10
    async with httpx.AsyncClient(timeout=120) as http:
        assert (await http.get(session["launch_url"])).status_code == 200
        out = (await http.post(f"{platform.urls['rgs']}/sessions/{session['token']}/spins",
                               json={"count": 30, "stake": 50})).json()
    assert out["settled"] == 30
    sessions_db = platform.apps["sessions"].state.runtime.database
    query = text("SELECT staked, won FROM game_sessions WHERE id = :id")
    for _ in range(100):  # the wallet's events reach sessions through the outbox and NATS
        async with sessions_db.session() as s:
            staked, won = (await s.execute(query, {"id": session["session_id"]})).one()
        if (staked, won) == (1500, out["won"]):
            break
        await asyncio.sleep(0.1)
    assert (staked, won) == (1500, out["won"])
    started = datetime.fromisoformat(session["started_at"])
    await sweeper.sweep_once(sessions_db, started + timedelta(minutes=11))
    (check,) = [e["data"] for e in await stored_events(platform.extras["nats"], "gameplane.sessions.reality_check",
                                                        {"session_id": session["session_id"]}, 1)]
    assert (check["staked"], check["won"], check["currency"]) == (1500, out["won"], "EUR")
    assert check["elapsed_seconds"] >= 660
