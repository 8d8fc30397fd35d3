"""Bad input at the edges of players, wallet and games is a 4xx problem, never a 5xx: text
PostgreSQL cannot store (a NUL character) in a query, a path or a body; numbers far past any
sensible value; amounts past their currency's bound. And a 405 names every method of the path.
Each refusal has a control beside it: the same request without the flaw is accepted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gameplane.contracts.games import GameUpsert
from gameplane.devtools.testing import as_service, as_staff, running
from gameplane.games.app import build_app as build_games
from gameplane.games.settings import GamesSettings, ProviderSettings
from gameplane.kit.money import max_amount
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

VALIDATION = "https://gameplane.io/problems/validation-error"
PROBLEM_JSON = "application/problem+json"


class Edge:
    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client


@pytest.fixture(scope="module")
async def players(module_service_settings: Any) -> AsyncIterator[Edge]:
    app = build_players(module_service_settings(PlayersSettings, argon2_time_cost=1, argon2_memory_kib=8192,
                                                argon2_parallelism=1))
    async with running(app) as client:
        yield Edge(app, client)


@pytest.fixture(scope="module")
async def games(module_service_settings: Any) -> AsyncIterator[Edge]:
    app = build_games(module_service_settings(GamesSettings, providers={
        "rgs": ProviderSettings(dialect="canonical", secret="edges-provider-secret-0123456789abcdef")}))
    async with running(app) as client:
        yield Edge(app, client)


@pytest.fixture(scope="module")
async def wallet(module_service_settings: Any) -> AsyncIterator[Edge]:
    app = build_wallet(module_service_settings(WalletSettings))
    async with running(app) as client:
        yield Edge(app, client)


@pytest.fixture
async def player(players: Edge) -> dict[str, str]:
    """A registered player and the headers of the gateway vouching for them."""
    r = await players.client.post("/v1/players/register", headers=as_service(players.app), json={
        "email": f"edge-{uuid.uuid4().hex[:10]}@example.com", "password": "edges-Password-12345",
        "date_of_birth": "1990-01-02", "country": "DE", "currency": "EUR"})
    assert r.status_code == 201, r.text
    return as_service(players.app, "gateway", uuid.UUID(r.json()["id"]))


def refused(r: httpx.Response, status: int = 422, type_: str = VALIDATION) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == type_


# ---- NUL characters --------------------------------------------------------------------------

@pytest.mark.parametrize("flawed, control", [
    ("/v1/games?category=slot%00s", "/v1/games?category=slots"),
    ("/v1/games?provider=rg%00s", "/v1/games?provider=rgs"),
    ("/v1/games/fruit-fi%00ves", "/v1/games/fruit-fives"),
], ids=["query-category", "query-provider", "path-game-id"])
async def test_a_nul_in_the_public_catalogue_is_a_422(games: Edge, flawed: str, control: str) -> None:
    refused(await games.client.get(flawed))
    assert (await games.client.get(control)).status_code == 200


async def test_a_nul_in_a_body_is_a_422(players: Edge, player: dict[str, str]) -> None:
    refused(await players.client.patch("/v1/players/me", headers=player, json={"first_name": "Ad\x00a"}))
    ok = await players.client.patch("/v1/players/me", headers=player, json={"first_name": "Ada"})
    assert ok.status_code == 200 and ok.json()["first_name"] == "Ada"


async def test_a_nul_in_a_money_operation_is_a_422_and_moves_nothing(wallet: Edge) -> None:
    headers = as_service(wallet.app, "payments")
    pid = str(uuid.uuid4())
    body = {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": pid, "currency": "EUR", "amount": 500}
    refused(await wallet.client.post("/internal/wallet/deposits", headers=headers, json={**body, "psp": "p\x00"}))
    balance = await wallet.client.get(f"/internal/wallet/players/{pid}/balances/EUR",
                                      headers=as_service(wallet.app, "games"))
    assert balance.json()["cash"] == 0
    assert (await wallet.client.post("/internal/wallet/deposits", headers=headers, json=body)).status_code == 200
    bet = {"idempotency_key": f"bet-{uuid.uuid4()}", "player_id": pid, "currency": "EUR", "amount": 100,
           "round_id": "r\x00", "game_id": "fruit-fives", "provider": "rgs"}
    refused(await wallet.client.post("/internal/wallet/bets", headers=as_service(wallet.app, "games"), json=bet))
    balance = await wallet.client.get(f"/internal/wallet/players/{pid}/balances/EUR",
                                      headers=as_service(wallet.app, "games"))
    assert balance.json()["cash"] == 500


# ---- numbers far out of range ----------------------------------------------------------------

@pytest.mark.parametrize("path, body", [
    ("/v1/players/me/timeout", {"days": 10**9}),
    ("/v1/players/me/self-exclusion", {"months": 10**9}),
    ("/v1/players/me/limits", {"kind": "deposit", "period": "day", "value": 2**63}),
    ("/v1/players/me/limits", {"kind": "loss", "period": "week", "value": 10**30}),
    ("/v1/players/me/reality-check", {"minutes": 2**63}),
], ids=["timeout-days", "self-exclusion-months", "limit-2^63", "limit-10^30", "reality-check"])
async def test_huge_numbers_from_a_player_are_a_422(players: Edge, player: dict[str, str], path: str,
                                                    body: dict[str, Any]) -> None:
    r = await (players.client.post if path.endswith(("timeout", "exclusion")) else players.client.put)(
        path, headers=player, json=body)
    refused(r)


async def test_the_largest_allowed_limit_is_accepted(players: Edge, player: dict[str, str]) -> None:
    value = max_amount("EUR")
    r = await players.client.put("/v1/players/me/limits", headers=player,
                                 json={"kind": "deposit", "period": "month", "value": value})
    assert r.status_code == 200, r.text


# ---- amounts bounded per currency ------------------------------------------------------------

@pytest.mark.parametrize("currency, bound", [("EUR", 100_000_000_000), ("JPY", 100_000_000_000),
                                             ("KWD", 1_000_000_000_000)])
async def test_amounts_are_bounded_per_currency(wallet: Edge, currency: str, bound: int) -> None:
    # The bounds are written out here, not read from the code: a change to them must change this test
    # and docs/api/limits.md (tests/unit/test_docs_limits.py) together.
    assert max_amount(currency) == bound
    headers = as_service(wallet.app, "payments")
    pid = str(uuid.uuid4())

    def deposit(amount: int) -> dict[str, Any]:
        return {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": pid, "currency": currency, "amount": amount}

    refused(await wallet.client.post("/internal/wallet/deposits", headers=headers, json=deposit(bound + 1)))
    refused(await wallet.client.post("/internal/wallet/deposits", headers=headers, json=deposit(2**63)))
    ok = await wallet.client.post("/internal/wallet/deposits", headers=headers, json=deposit(bound))
    assert ok.status_code == 200 and ok.json()["balance"]["cash"] == bound, ok.text
    adjust = {"idempotency_key": f"adj-{uuid.uuid4()}", "player_id": pid, "currency": currency,
              "amount": -(bound + 1), "reason": "bound test"}
    refused(await wallet.client.post("/internal/wallet/adjustments", headers=as_staff(wallet.app, "finance"),
                                     json=adjust))


# ---- 405 with every method -------------------------------------------------------------------

@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/v1/players/me/kyc", {"GET", "POST"}),
    ("DELETE", "/v1/players/me/kyc", {"GET", "POST"}),
    ("DELETE", "/v1/players/me/limits", {"PUT"}),
    ("DELETE", "/v1/players/me/protection", {"GET"}),
    ("GET", "/v1/players/me/timeout", {"POST", "DELETE"}),
    ("PUT", "/v1/players/me", {"GET", "PATCH"}),
])
async def test_a_wrong_method_is_a_405_naming_every_method_of_the_path(
        players: Edge, player: dict[str, str], method: str, path: str, allowed: set[str]) -> None:
    r = await players.client.request(method, path, headers=player)
    refused(r, 405, "https://gameplane.io/problems/method-not-allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


async def test_lifting_a_protection_still_has_its_own_answers(players: Edge, player: dict[str, str]) -> None:
    # the routes that replaced DELETE /me/{kind}: nothing to lift, then an active time-out is kept
    refused(await players.client.delete("/v1/players/me/timeout", headers=player), 422,
            "https://gameplane.io/problems/no-active-timeout")
    assert (await players.client.post("/v1/players/me/timeout", headers=player, json={"days": 1})).status_code == 200
    refused(await players.client.delete("/v1/players/me/timeout", headers=player), 409,
            "https://gameplane.io/problems/timeout-cannot-be-lifted")
    refused(await players.client.delete("/v1/players/me/self-exclusion", headers=player), 422,
            "https://gameplane.io/problems/no-active-self-exclusion")


async def test_no_game_can_take_the_id_of_the_provider_listing(games: Edge) -> None:
    headers = as_service(games.app, "backoffice")
    game = (await games.client.get("/internal/games/fruit-fives", headers=as_service(games.app, "sessions"))).json()
    body = {k: game[k] for k in GameUpsert.model_fields}
    refused(await games.client.put("/internal/games/providers", headers=headers, json=body))
    ok = await games.client.put("/internal/games/fruit-fives-2", headers=headers, json=body)  # control
    assert ok.status_code == 200, ok.text
