"""games against the real wallet and sessions: the catalog, the canonical provider API and the
aggregator dialect, on real Postgres and NATS (apps served on loopback ports, one event loop)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gameplane.contracts.games import SIGNATURE_HEADER, sign
from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.games import aggregator
from gameplane.games.settings import ProviderSettings

SECRET = "games-service-test-provider-secret"
AGG_PRIVATE, AGG_PUBLIC = aggregator.new_key_pair()


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"games_api_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET, extra_providers={
            "agg": ProviderSettings(dialect="aggregator", public_key_pem=AGG_PUBLIC)}) as p:
        p.extras["nats"] = nats_server.url
        yield p


@pytest.fixture
async def games(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.urls["games"], timeout=10) as http:
        yield http


class Provider:
    def __init__(self, http: httpx.AsyncClient, token: str, game_id: str = "fruit-fives") -> None:
        self.http, self.token, self.game_id = http, token, game_id

    async def call(self, op: str, **fields: Any) -> httpx.Response:
        payload = {"request_id": uuid.uuid4().hex, "timestamp": datetime.now(UTC).isoformat(), "token": self.token,
                   **fields}
        body = json.dumps(payload).encode()
        return await self.http.post(f"/providers/rgs/{op}", content=body,
                                    headers={SIGNATURE_HEADER: sign(SECRET, body)})

    async def bet(self, amount: int, round_id: str, tx: str | None = None, **over: Any) -> httpx.Response:
        return await self.call("bet", **{"transaction_id": tx or uuid.uuid4().hex, "round_id": round_id,
                                         "game_id": self.game_id, "amount": amount, "currency": "EUR", **over})

    async def win(self, amount: int, round_id: str, closed: bool = True) -> httpx.Response:
        return await self.call("win", transaction_id=uuid.uuid4().hex, round_id=round_id, game_id=self.game_id,
                               amount=amount, currency="EUR", round_closed=closed)

    async def rollback(self, bet_tx: str) -> httpx.Response:
        return await self.call("rollback", transaction_id=uuid.uuid4().hex, bet_transaction_id=bet_tx)


async def player_with_session(platform: LocalPlatform, balance: int, **launch_kw: Any) -> tuple[uuid.UUID, dict]:
    player = await new_player(platform, platform.extras["nats"], balance)
    return player, await launch(platform, player, **launch_kw)


async def wallet_balance(platform: LocalPlatform, player: uuid.UUID) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=10) as http:
        r = await http.get(f"/internal/wallet/players/{player}/balances/EUR",
                           headers=platform.headers("wallet", caller="games"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# ---- catalog ---------------------------------------------------------------------------------------

async def test_catalog_is_public_and_edited_through_internal_routes(platform: LocalPlatform,
                                                                     games: httpx.AsyncClient) -> None:
    listed = (await games.get("/v1/games")).json()
    fives = next(g for g in listed if g["game_id"] == "fruit-fives")
    assert fives["rtp_bp"] == 9640 and fives["provider"] == "rgs"
    assert fives["stakes"]["EUR"] == {"min": 10, "max": 10000}
    assert (await games.get("/v1/games/fruit-fives")).json()["title"] == "Fruit Fives"
    missing = await games.get("/v1/games/no-such-game")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/game-not-found")

    body = {"provider": "agg", "title": "Aggregated Reels", "rtp_bp": 9500, "volatility": "high",
            "wagering_contribution_pct": 50, "stakes": {"EUR": {"min": 10, "max": 500}},
            "jurisdictions": ["mga", "ukgc"]}
    assert (await games.put("/internal/games/agg-reels", json=body)).status_code == 401
    r = await games.put("/internal/games/agg-reels", json=body, headers=platform.headers("games", caller="backoffice"))
    assert r.status_code == 200 and r.json()["wagering_contribution_pct"] == 50
    bad = await games.put("/internal/games/x", json={**body, "provider": "nobody"},
                          headers=platform.headers("games", caller="backoffice"))
    assert bad.status_code == 422 and bad.json()["type"].endswith("/unknown-provider")
    assert [g["game_id"] for g in (await games.get("/v1/games", params={"provider": "agg"})).json()] == ["agg-reels"]

    providers = await games.get("/internal/games/providers", headers=platform.headers("games", caller="backoffice"))
    assert providers.json() == [{"name": "agg", "dialect": "aggregator"}, {"name": "rgs", "dialect": "canonical"}]
    assert SECRET not in providers.text and "BEGIN PUBLIC KEY" not in providers.text


# ---- canonical dialect -----------------------------------------------------------------------------

async def test_a_round_moves_money_through_the_wallet(platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    auth = await p.call("authenticate")
    assert auth.status_code == 200
    assert auth.json()["player_id"] == str(player) and auth.json()["balance"] == 1000
    bet = await p.bet(100, "R1")
    assert bet.status_code == 200 and bet.json()["balance"] == 900
    win = await p.win(250, "R1")
    assert win.status_code == 200 and win.json()["balance"] == 1150
    assert (await wallet_balance(platform, player))["cash"] == 1150


async def test_refusals_are_typed_and_carry_the_balance(platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    _, session = await player_with_session(platform, 300)
    p = Provider(games, session["token"])
    cases = [
        (await p.bet(400, "R1"), 402, "insufficient-funds"),
        (await p.bet(5, "R2"), 400, "stake-out-of-range"),
        (await p.bet(100, "R3", currency="USD"), 400, "currency-mismatch"),
        (await p.bet(100, "R4", game_id="another-game"), 400, "game-mismatch"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        assert resp.json()["code"] == code
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert cases[0][0].json()["balance"] == 300 and cases[1][0].json()["balance"] == 300
    unknown = await Provider(games, "no-such-token").bet(100, "R5")
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid-token"
    nobody = await games.post("/providers/nobody/bet", content=b"{}")
    assert nobody.status_code == 404 and nobody.json()["code"] == "unknown-provider"


async def test_same_request_id_gets_the_same_answer_even_a_refusal(platform: LocalPlatform,
                                                                   games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 50)
    payload = {"request_id": "fixed-" + uuid.uuid4().hex, "timestamp": datetime.now(UTC).isoformat(),
               "token": session["token"], "transaction_id": uuid.uuid4().hex, "round_id": "R1",
               "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    body = json.dumps(payload).encode()
    first = await games.post("/providers/rgs/bet", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)})
    assert first.json()["code"] == "insufficient-funds"
    from gameplane.devtools.inprocess import deposit

    await deposit(platform, player, 1000)
    again = await games.post("/providers/rgs/bet", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)})
    assert again.status_code == first.status_code and again.json() == first.json()
    assert (await wallet_balance(platform, player))["cash"] == 1050


async def test_an_ended_session_refuses_bets_but_settles_wins_and_rollbacks(platform: LocalPlatform,
                                                                            games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    open_tx = uuid.uuid4().hex
    assert (await p.bet(100, "R1")).status_code == 200
    assert (await p.bet(100, "R2", tx=open_tx)).status_code == 200
    # games keeps the open session (for a minute) on the strength of hearing sessions.ended ...
    seamless = platform.apps["games"].state.runtime.state["seamless"]
    assert seamless._sessions.trusted(session["token"], seamless._epoch())
    async with httpx.AsyncClient(base_url=platform.urls["sessions"]) as http:
        ended = await http.post(f"/v1/sessions/{session['session_id']}/end",
                                headers=platform.headers("sessions", player_id=player))
    assert ended.json()["status"] == "ended" and ended.json()["end_reason"] == "player"
    # ... so the end event, not a timeout, is what makes the provider see the session closed
    for _ in range(100):
        if (await p.call("authenticate")).json().get("code") == "session-expired":
            break
        await asyncio.sleep(0.1)
    refused = await p.bet(100, "R3")
    assert refused.status_code == 403 and refused.json()["code"] == "session-expired"
    assert refused.json()["balance"] == 800
    assert (await p.win(500, "R1")).json()["balance"] == 1300
    assert (await p.rollback(open_tx)).json()["balance"] == 1400
    assert (await p.call("authenticate")).json()["code"] == "session-expired"


# ---- aggregator dialect ----------------------------------------------------------------------------

async def test_the_aggregator_dialect_plays_through_the_same_core(platform: LocalPlatform,
                                                                  games: httpx.AsyncClient) -> None:
    body = {"provider": "agg", "title": "Aggregated Reels", "rtp_bp": 9500, "stakes": {"EUR": {"min": 10, "max": 5000}},
            "jurisdictions": ["mga", "ukgc"]}
    r = await games.put("/internal/games/agg-reels", json=body, headers=platform.headers("games", caller="backoffice"))
    assert r.status_code == 200
    player, session = await player_with_session(platform, 2000, game_id="agg-reels")
    assert session["provider"] == "agg"

    async def call(path: str, **fields: Any) -> dict[str, Any]:
        raw = json.dumps({"user": str(player), "token": session["token"], "request_uuid": uuid.uuid4().hex,
                          **fields}).encode()
        r = await games.post(f"/providers/agg/{path}", content=raw,
                             headers={aggregator.SIGNATURE_HEADER: aggregator.sign(AGG_PRIVATE, raw)})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    info = await call("user/info")
    assert info["status"] == "RS_OK" and info["balance"] == 2_000_000 and info["currency"] == "EUR"
    bet = {"transaction_uuid": uuid.uuid4().hex, "round": "AR1", "game_code": "agg-reels", "currency": "EUR",
           "amount": 500_000}
    assert (await call("transaction/bet", **bet))["balance"] == 1_500_000
    assert (await call("transaction/bet", **bet))["balance"] == 1_500_000  # replay, no second debit
    assert (await call("transaction/bet", **{**bet, "amount": 600_000}))["status"] == "RS_ERROR_DUPLICATE_TRANSACTION"
    too_much = await call("transaction/bet", **{**bet, "transaction_uuid": uuid.uuid4().hex, "round": "AR2",
                                                "amount": 490_000_000})
    assert too_much["status"] in ("RS_ERROR_NOT_ENOUGH_MONEY", "RS_ERROR_LIMIT_REACHED")
    assert too_much["balance"] == 1_500_000
    win = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, round="AR1", game_code="agg-reels",
                     currency="EUR", amount=1_250_000, reference_transaction_uuid=bet["transaction_uuid"])
    assert win["status"] == "RS_OK" and win["balance"] == 2_750_000
    late = await call("transaction/rollback", transaction_uuid=uuid.uuid4().hex,
                      reference_transaction_uuid=bet["transaction_uuid"], round="AR1")
    assert late["status"] == "RS_ERROR_ROUND_CLOSED"
    wrong_user = json.dumps({"user": str(uuid.uuid4()), "token": session["token"], "request_uuid": "x"}).encode()
    r = await games.post("/providers/agg/user/balance", content=wrong_user,
                         headers={aggregator.SIGNATURE_HEADER: aggregator.sign(AGG_PRIVATE, wrong_user)})
    assert r.json()["status"] == "RS_ERROR_INVALID_TOKEN"
    assert (await wallet_balance(platform, player))["cash"] == 2750
