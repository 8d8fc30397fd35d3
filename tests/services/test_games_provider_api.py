"""games against the real wallet and sessions: the catalog, the canonical provider API and the
aggregator dialect, on real Postgres and NATS (apps served on loopback ports, one event loop)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gameplane.contracts.games import signed_headers
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
        payload = {"request_id": uuid.uuid4().hex, "token": self.token, **fields}
        body = json.dumps(payload).encode()
        return await self.http.post(f"/providers/rgs/{op}", content=body,
                                    headers=signed_headers(SECRET, f"/providers/rgs/{op}", body))

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
    payload = {"request_id": "fixed-" + uuid.uuid4().hex,
               "token": session["token"], "transaction_id": uuid.uuid4().hex, "round_id": "R1",
               "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    body = json.dumps(payload).encode()
    first = await games.post("/providers/rgs/bet", content=body,
                             headers=signed_headers(SECRET, "/providers/rgs/bet", body))
    assert first.json()["code"] == "insufficient-funds"
    from gameplane.devtools.inprocess import deposit

    await deposit(platform, player, 1000)
    again = await games.post("/providers/rgs/bet", content=body,
                             headers=signed_headers(SECRET, "/providers/rgs/bet", body))
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
                             headers=aggregator.signed_headers(AGG_PRIVATE, f"/providers/agg/{path}", raw))
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
                         headers=aggregator.signed_headers(AGG_PRIVATE, "/providers/agg/user/balance", wrong_user))
    assert r.json()["status"] == "RS_ERROR_INVALID_TOKEN"
    assert (await wallet_balance(platform, player))["cash"] == 2750


# ---- limits: amounts, win cap, ids ------------------------------------------------------------------

async def test_a_win_above_the_games_maximum_multiplier_is_refused_with_the_balance(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    game = (await games.get("/v1/games/fruit-fives")).json()
    assert game["max_win_multiplier"] == 500
    assert (await p.bet(100, "CAP1")).status_code == 200
    assert (await p.bet(20, "CAP1")).status_code == 200                 # the round's stakes: 120
    over = await p.win(120 * 500 + 1, "CAP1", closed=False)
    assert over.status_code == 400, over.text
    assert over.headers["content-type"].startswith("application/problem+json")
    body = over.json()
    assert body["code"] == "max-win-exceeded" and body["type"].endswith("/max-win-exceeded")
    assert body["balance"] == 880 and body["currency"] == "EUR"
    # Up to the cap, wins add up; past it, the next one is refused.
    assert (await p.win(120 * 400, "CAP1", closed=False)).json()["balance"] == 880 + 48_000
    assert (await p.win(120 * 100, "CAP1", closed=False)).json()["balance"] == 880 + 60_000
    refused = await p.win(1, "CAP1")
    assert refused.json()["code"] == "max-win-exceeded" and refused.json()["balance"] == 60_880
    assert (await wallet_balance(platform, player))["cash"] == 60_880


@pytest.mark.parametrize("amount", [2**63, 2**64, 10**30, -1])
async def test_unstorable_amounts_are_a_validation_problem_never_a_5xx(
        platform: LocalPlatform, games: httpx.AsyncClient, amount: int) -> None:
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    assert (await p.bet(100, "BIG")).status_code == 200
    for resp in (await p.bet(amount, "BIG2"), await p.win(amount, "BIG")):
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "validation-error"
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert (await wallet_balance(platform, player))["cash"] == 900


async def test_amounts_above_the_currency_maximum_are_refused_with_the_balance(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    from gameplane.contracts.games import MAX_AMOUNT_MINOR

    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    assert (await p.bet(100, "MAX")).status_code == 200
    for resp in (await p.bet(MAX_AMOUNT_MINOR["EUR"] + 1, "MAX2"), await p.win(MAX_AMOUNT_MINOR["EUR"] + 1, "MAX"),
                 await p.win(2**63 - 1, "MAX")):
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "amount-out-of-range" and resp.json()["balance"] == 900
    assert (await wallet_balance(platform, player))["cash"] == 900


@pytest.mark.parametrize("field", ["token", "request_id", "transaction_id", "round_id", "game_id"])
async def test_a_nul_or_a_space_in_an_id_is_a_validation_problem(
        platform: LocalPlatform, games: httpx.AsyncClient, field: str) -> None:
    _, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    for bad in ("a\x00b", "a b", "\x00"):
        fields = {"transaction_id": uuid.uuid4().hex, "round_id": "NUL", "game_id": "fruit-fives", "amount": 10,
                  "currency": "EUR", "token": session["token"], field: bad}
        resp = await p.call("bet", **fields)
        assert resp.status_code == 422, (field, resp.text)
        assert resp.json()["code"] == "validation-error"


async def test_currency_and_game_mismatches_carry_the_balance(platform: LocalPlatform,
                                                              games: httpx.AsyncClient) -> None:
    _, session = await player_with_session(platform, 700)
    p = Provider(games, session["token"])
    for resp, code in ((await p.bet(100, "M1", currency="USD"), "currency-mismatch"),
                       (await p.bet(100, "M2", game_id="another-game"), "game-mismatch")):
        assert resp.json()["code"] == code and resp.json()["balance"] == 700 and resp.json()["currency"] == "EUR"


async def test_aggregator_amount_bounds_and_win_cap_answer_in_the_dialect(platform: LocalPlatform,
                                                                          games: httpx.AsyncClient) -> None:
    body = {"provider": "agg", "title": "Capped Reels", "rtp_bp": 9500, "stakes": {"EUR": {"min": 10, "max": 5000}},
            "jurisdictions": ["mga", "ukgc"], "max_win_multiplier": 10}
    put = await games.put("/internal/games/capped-reels", json=body, headers=platform.headers("games", "backoffice"))
    assert put.status_code == 200
    player, session = await player_with_session(platform, 2000, game_id="capped-reels")

    async def call(path: str, **fields: Any) -> httpx.Response:
        raw = json.dumps({"user": str(player), "token": session["token"], "request_uuid": uuid.uuid4().hex,
                          **fields}).encode()
        return await games.post(f"/providers/agg/{path}", content=raw,
                                headers=aggregator.signed_headers(AGG_PRIVATE, f"/providers/agg/{path}", raw))

    money = {"round": "CR1", "game_code": "capped-reels", "currency": "EUR"}
    assert (await call("transaction/bet", transaction_uuid=uuid.uuid4().hex, amount=100_000, **money)).json()[
        "balance"] == 1_900_000                                           # 1.00 EUR staked
    finer = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, amount=1_000_001, **money)
    assert finer.status_code == 200 and finer.json()["status"] == "RS_ERROR_WRONG_TYPES"  # finer than a cent
    over_cap = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, amount=1_100_000, **money)
    assert over_cap.json()["status"] == "RS_ERROR_LIMIT_REACHED" and over_cap.json()["balance"] == 1_900_000
    huge = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, amount=(2**63 - 1) // 1000 * 1000, **money)
    assert huge.status_code == 200 and huge.json()["status"] == "RS_ERROR_LIMIT_REACHED"
    assert huge.json()["balance"] == 1_900_000
    unstorable = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, amount=2**63, **money)
    assert unstorable.status_code == 200 and unstorable.json()["status"] == "RS_ERROR_WRONG_TYPES"
    nul = await call("transaction/win", transaction_uuid="t\x00", amount=0, **money)
    assert nul.status_code == 200 and nul.json()["status"] == "RS_ERROR_WRONG_TYPES"
    ok = await call("transaction/win", transaction_uuid=uuid.uuid4().hex, amount=1_000_000, **money)
    assert ok.json()["status"] == "RS_OK" and ok.json()["balance"] == 2_900_000
    assert (await wallet_balance(platform, player))["cash"] == 2900


# ---- signatures bind the body to its endpoint and moment ------------------------------------------------

async def test_a_signed_bet_body_replayed_at_win_or_rollback_moves_nothing(platform: LocalPlatform,
                                                                            games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 1000)
    body = json.dumps({"request_id": uuid.uuid4().hex, "token": session["token"], "transaction_id": uuid.uuid4().hex,
                       "round_id": "RP1", "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}).encode()
    headers = signed_headers(SECRET, "/providers/rgs/bet", body)
    assert (await games.post("/providers/rgs/bet", content=body, headers=headers)).json()["balance"] == 900
    for op in ("win", "rollback"):
        replay = await games.post(f"/providers/rgs/{op}", content=body, headers=headers)
        assert replay.status_code == 401 and replay.json()["code"] == "invalid-signature", replay.text
    # A body no record knows yet: signed for /bet it is refused at /win, and only the signature
    # stands in its way (signed for /win, the very same bytes are paid).
    unseen = json.dumps({"request_id": uuid.uuid4().hex, "token": session["token"],
                         "transaction_id": uuid.uuid4().hex, "round_id": "RP1", "game_id": "fruit-fives",
                         "amount": 100, "currency": "EUR"}).encode()
    refused = await games.post("/providers/rgs/win", content=unseen,
                               headers=signed_headers(SECRET, "/providers/rgs/bet", unseen))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid-signature"
    assert (await wallet_balance(platform, player))["cash"] == 900
    win = await games.post("/providers/rgs/win", content=unseen,
                           headers=signed_headers(SECRET, "/providers/rgs/win", unseen))
    assert win.status_code == 200 and win.json()["balance"] == 1000
    assert (await wallet_balance(platform, player))["cash"] == 1000


async def test_the_aggregator_signature_binds_path_and_timestamp_too(platform: LocalPlatform,
                                                                     games: httpx.AsyncClient) -> None:
    import time

    body = {"provider": "agg", "title": "Signed Reels", "rtp_bp": 9500,
            "stakes": {"EUR": {"min": 10, "max": 5000}}, "jurisdictions": ["mga", "ukgc"]}
    put = await games.put("/internal/games/signed-reels", json=body, headers=platform.headers("games", "backoffice"))
    assert put.status_code == 200
    player, session = await player_with_session(platform, 1000, game_id="signed-reels")
    raw = json.dumps({"user": str(player), "token": session["token"], "request_uuid": uuid.uuid4().hex,
                      "transaction_uuid": uuid.uuid4().hex, "round": "AGR", "game_code": "signed-reels",
                      "currency": "EUR", "amount": 100_000}).encode()
    bet_headers = aggregator.signed_headers(AGG_PRIVATE, "/providers/agg/transaction/bet", raw)
    assert (await games.post("/providers/agg/transaction/bet", content=raw, headers=bet_headers)).json()[
        "balance"] == 900_000
    at_win = await games.post("/providers/agg/transaction/win", content=raw, headers=bet_headers)
    assert at_win.json()["status"] == "RS_ERROR_INVALID_SIGNATURE"
    stale = aggregator.signed_headers(AGG_PRIVATE, "/providers/agg/transaction/win", raw,
                                      timestamp=str(int(time.time()) - 3600))
    late = await games.post("/providers/agg/transaction/win", content=raw, headers=stale)
    assert late.json()["status"] == "RS_ERROR_INVALID_SIGNATURE" and "s from server time" in late.json()["message"]
    assert (await wallet_balance(platform, player))["cash"] == 900


# ---- request-id records are pruned after the replay window -----------------------------------------------

async def test_request_records_older_than_twice_the_window_are_pruned_and_money_stays_idempotent(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    from gameplane.games import records
    from gameplane.games.app import REPLAY_PRUNE
    from gameplane.kit import periodic

    rt = platform.apps["games"].state.runtime
    pool = rt.database.pool
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    tx = uuid.uuid4().hex
    payload = {"request_id": "prune-" + uuid.uuid4().hex, "transaction_id": tx, "round_id": "PR1",
               "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    assert (await p.call("bet", **payload)).json()["balance"] == 900
    fresh = await p.call("balance")
    window = rt.settings.replay_retention_seconds
    assert window == 2 * rt.settings.clock_skew_seconds
    # Age the bet's record past the window (as time would); the balance call's record stays fresh.
    await pool.execute("UPDATE provider_requests SET created_at = now() - make_interval(secs => $2) "
                       "WHERE request_id = $1", payload["request_id"], window + 1)
    count = "SELECT count(*) FROM provider_requests WHERE request_id = $1"
    deleted = await records.prune_requests(pool, window)
    assert deleted >= 1
    assert await pool.fetchval(count, payload["request_id"]) == 0
    assert await pool.fetchval(count, fresh.json()["request_id"]) == 1
    # The provider retrying the same request after the window: the transaction id still holds.
    again = await p.call("bet", **payload)
    assert again.status_code == 200 and again.json()["balance"] == 900
    assert (await wallet_balance(platform, player))["cash"] == 900

    # The service's own loop does the same on its tick.
    await pool.execute("UPDATE provider_requests SET created_at = now() - make_interval(secs => $2) "
                       "WHERE request_id = $1", payload["request_id"], window + 1)
    start, stop = periodic.schedule(dataclasses.replace(REPLAY_PRUNE, name="prune-test", every=lambda s: 0.05))
    await start(rt)
    try:
        for _ in range(200):
            if await pool.fetchval(count, payload["request_id"]) == 0:
                break
            await asyncio.sleep(0.05)
        assert await pool.fetchval(count, payload["request_id"]) == 0
    finally:
        await stop(rt)
    # The service started its own job at start-up, and it is still running.
    assert not rt.state["jobs"]["replay-prune"].done()


# ---- the OpenAPI document describes what the provider routes really answer -------------------------------

async def test_every_provider_answer_is_documented_with_its_status_media_type_and_schema(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    from gameplane.contracts.games import ProviderAnswer, ProviderProblem

    doc = (await games.get("/openapi.json")).json()
    _, session = await player_with_session(platform, 300)
    p = Provider(games, session["token"])
    bet = await p.bet(100, "DOC")
    seen = {
        "bet": [bet, await p.bet(400, "DOC2"), await p.bet(5, "DOC3"), await p.bet(2**63, "DOC4"),
                await games.post("/providers/rgs/bet", content=b"{}")],
        "win": [await p.win(100 * 500 + 1, "DOC"), await p.win(10, "DOC")],
        "rollback": [await p.rollback(uuid.uuid4().hex)],
        "authenticate": [await p.call("authenticate"), await Provider(games, "nobody").call("authenticate")],
    }
    seen["bet"].append(await games.post("/providers/nobody/bet", content=b"{}"))
    statuses = set()
    for op, answers in seen.items():
        operation = doc["paths"][f"/providers/{{provider}}/{op}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["required"]
        assert {p["name"] for p in operation["parameters"]} >= {"X-Gameplane-Timestamp", "X-Gameplane-Signature"}
        for resp in answers:
            documented = operation["responses"].get(str(resp.status_code))
            assert documented is not None, (op, resp.status_code, list(operation["responses"]))
            media = resp.headers["content-type"].split(";")[0]
            assert media in documented["content"], (op, resp.status_code, media)
            model = ProviderAnswer if resp.status_code == 200 else ProviderProblem
            assert set(resp.json()) <= set(model.model_fields), (op, resp.json())
            model.model_validate(resp.json())
            statuses.add(resp.status_code)
    assert statuses >= {200, 400, 401, 402, 404, 422}  # the sample covers success and refusals
    for path in ("user/info", "user/balance", "transaction/bet", "transaction/win", "transaction/rollback"):
        operation = doc["paths"][f"/providers/{{provider}}/{path}"]["post"]
        assert set(operation["responses"]) == {"200", "503"}
        assert {p["name"] for p in operation["parameters"]} >= {"X-Aggregator-Timestamp", "X-Aggregator-Signature"}


async def test_the_fastapi_routes_answer_provider_calls_like_the_fast_layer(platform: LocalPlatform,
                                                                             games: httpx.AsyncClient) -> None:
    """The documented routes are also live (an app mounted under a root path is served by them)."""
    app = platform.apps["games"]
    player, session = await player_with_session(platform, 500)
    body = json.dumps({"request_id": uuid.uuid4().hex, "token": session["token"], "transaction_id": uuid.uuid4().hex,
                       "round_id": "FA1", "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.inner), base_url="http://games") as inner:
        ok = await inner.post("/providers/rgs/bet", content=body,
                              headers=signed_headers(SECRET, "/providers/rgs/bet", body))
        assert ok.status_code == 200 and ok.json()["balance"] == 400
        at_win = await inner.post("/providers/rgs/win", content=body,
                                  headers=signed_headers(SECRET, "/providers/rgs/bet", body))
        assert at_win.status_code == 401 and at_win.json()["code"] == "invalid-signature"
        odd = await inner.post("/providers/rgs/refund", content=body,
                               headers=signed_headers(SECRET, "/providers/rgs/refund", body))
        assert odd.status_code == 422 and odd.json()["code"] == "validation-error"
    assert (await wallet_balance(platform, player))["cash"] == 400


async def test_a_game_whose_provider_has_no_credentials_is_not_offered(platform: LocalPlatform,
                                                                       games: httpx.AsyncClient) -> None:
    pool = platform.apps["games"].state.runtime.database.pool
    # A row left from a time the provider was configured (or written past the API).
    await pool.execute("INSERT INTO games (game_id, provider, title, category, rtp_bp, volatility, "
                       "wagering_contribution_pct, stakes, jurisdictions, enabled, updated_at) VALUES "
                       "('orphan-reels', 'gone', 'Orphan Reels', 'slots', 9500, 'low', 100, '{}', '[]', true, now()) "
                       "ON CONFLICT DO NOTHING")
    assert "orphan-reels" not in [g["game_id"] for g in (await games.get("/v1/games")).json()]
    assert (await games.get("/v1/games/orphan-reels")).status_code == 404
    internal = await games.get("/internal/games/orphan-reels", headers=platform.headers("games", caller="sessions"))
    assert internal.status_code == 200 and internal.json()["enabled"] is False
    # Negative control: a configured provider's game is offered.
    assert (await games.get("/v1/games/fruit-fives")).json()["enabled"] is True


async def test_parallel_wins_of_one_round_never_pass_its_cap_together(platform: LocalPlatform,
                                                                      games: httpx.AsyncClient) -> None:
    player, session = await player_with_session(platform, 1000)
    p = Provider(games, session["token"])
    assert (await p.bet(100, "PAR")).status_code == 200           # cap: 100 x 500 = 50,000
    # Eight wins of 10,000 at once: each alone is under the cap; together only five fit.
    answers = await asyncio.gather(*(p.win(10_000, "PAR", closed=False) for _ in range(8)))
    paid = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert len(paid) == 5, [a.text for a in answers]
    assert all(a.json()["code"] == "max-win-exceeded" for a in refused), [a.text for a in refused]
    assert (await wallet_balance(platform, player))["cash"] == 900 + 50_000
    pool = platform.apps["games"].state.runtime.database.pool
    row = await pool.fetchrow("SELECT win_total, win_pending FROM rounds WHERE player_id = $1 AND round_id = 'PAR'",
                              player)
    assert (row["win_total"], row["win_pending"]) == (50_000, 0)   # nothing left held
    # A retry of a paid win is a replay (same balance), not a refusal, though the round is full.
    again = await p.call("win", **{k: v for k, v in json.loads(paid[0].request.content).items()
                                   if k not in ("request_id", "token")})
    assert again.status_code == 200 and again.json()["balance"] == paid[0].json()["balance"]
