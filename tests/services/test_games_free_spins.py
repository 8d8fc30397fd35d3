"""Free spins in games against the real wallet, sessions and the RGS simulator (the studio that takes
the awards), on real Postgres and NATS: awards forwarded signed to the provider and answered
idempotently, awards no provider could honour refused, and free-spin wins refused before any money
moves when the award does not allow them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gameplane.contracts.games import PATH_FREE_SPINS, signed_headers
from gameplane.devtools.inprocess import LocalPlatform, launch, listener, local_platform, new_player
from gameplane.games import aggregator
from gameplane.games.settings import ProviderSettings

SECRET = "free-spins-test-provider-secret"
DOWN_SECRET = "free-spins-test-down-provider-key"
_, AGG_PUBLIC = aggregator.new_key_pair()


def closed_port_url() -> str:
    sock = listener()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"free_spins_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET, with_rgs=True, extra_providers={
            "agg": ProviderSettings(dialect="aggregator", public_key_pem=AGG_PUBLIC),
            "down": ProviderSettings(secret=DOWN_SECRET, api_url=closed_port_url())},
            rgs_overrides={"seed": 7}) as p:
        p.extras["nats"] = nats_server.url
        async with httpx.AsyncClient(base_url=p.urls["games"], timeout=20) as games:
            for game_id, provider in (("agg-reels", "agg"), ("down-reels", "down")):
                r = await games.put(f"/internal/games/{game_id}", headers=p.headers("games", caller="backoffice"),
                                    json={"provider": provider, "title": game_id, "rtp_bp": 9500,
                                          "stakes": {"EUR": {"min": 10, "max": 500}}})
                assert r.status_code == 200, r.text
        yield p


@pytest.fixture
async def games(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.urls["games"], timeout=20) as http:
        yield http


def award_body(player: uuid.UUID, *, spins: int = 3, stake: int = 100, game_id: str = "fruit-fives",
               expires_in: float = 3600, award_id: str | None = None, grant_id: str | None = None) -> dict[str, Any]:
    return {"award_id": award_id or f"aw-{uuid.uuid4().hex[:12]}", "grant_id": grant_id or f"g-{uuid.uuid4()}",
            "player_id": str(player), "currency": "EUR", "game_id": game_id, "spins": spins, "stake": stake,
            "expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()}


async def award(platform: LocalPlatform, games: httpx.AsyncClient, body: dict[str, Any],
                caller: str = "bonus") -> httpx.Response:
    return await games.post(PATH_FREE_SPINS, json=body, headers=platform.headers("games", caller=caller))


async def award_view(platform: LocalPlatform, games: httpx.AsyncClient, award_id: str) -> httpx.Response:
    return await games.get(f"{PATH_FREE_SPINS}/{award_id}", headers=platform.headers("games", caller="bonus"))


class Studio:
    """Signed canonical calls as the RGS would send them."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.token = http, token

    async def free_win(self, award_id: str, amount: int, *, tx: str | None = None,
                       round_id: str | None = None) -> httpx.Response:
        payload = {"request_id": uuid.uuid4().hex, "token": self.token, "transaction_id": tx or uuid.uuid4().hex,
                   "round_id": round_id or uuid.uuid4().hex, "game_id": "fruit-fives", "amount": amount,
                   "currency": "EUR", "round_closed": True, "free_spin_award_id": award_id}
        body = json.dumps(payload).encode()
        return await self.http.post("/providers/rgs/win", content=body,
                                    headers=signed_headers(SECRET, "/providers/rgs/win", body))


async def session_for(platform: LocalPlatform, balance: int) -> tuple[uuid.UUID, str]:
    player = await new_player(platform, platform.extras["nats"], balance)
    return player, str((await launch(platform, player))["token"])


# ---- awards ---------------------------------------------------------------------------------------

async def test_an_award_reaches_the_provider_signed_and_repeats_answer_the_same(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player = uuid.uuid4()
    body = award_body(player, spins=5, stake=50)
    first = await award(platform, games, body)
    assert first.status_code == 200, first.text
    view = first.json()
    assert (view["state"], view["spins_played"], view["won"], view["provider"]) == ("awarded", 0, 0, "rgs")
    # The studio holds it: games signed it with the provider's key and the studio verified that.
    async with httpx.AsyncClient(base_url=platform.urls["rgs"]) as rgs:
        held = await rgs.get(f"/free-spins/{body['award_id']}")
    assert held.status_code == 200 and (held.json()["spins"], held.json()["stake"]) == (5, 50)
    assert "grant_id" not in held.json()  # the grant stays with the platform

    again = await award(platform, games, body)
    assert again.status_code == 200 and again.json() == view
    assert (await award_view(platform, games, body["award_id"])).json() == view
    other = await award(platform, games, {**body, "spins": 6})
    assert other.status_code == 409 and other.json()["type"].endswith("/free-spin-award-exists")
    assert (await award(platform, games, award_body(player), caller="gateway")).status_code == 403
    missing = await award_view(platform, games, "no-such-award")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/free-spin-award-not-found")


async def test_awards_no_provider_can_honour_are_refused(platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player = uuid.uuid4()
    cases = [
        (award_body(player, game_id="no-such-game"), 404, "game-not-found"),
        (award_body(player, expires_in=-60), 422, "validation-error"),
        (award_body(player, game_id="agg-reels"), 422, "free-spins-unsupported"),
        (award_body(player, stake=5), 422, "validation-error"),  # below the game's EUR stakes
        (award_body(player, stake=15), 422, "free-spin-award-refused"),  # the studio: 15 does not split over 10 lines
        (award_body(player, game_id="down-reels"), 503, "dependency-unavailable"),
    ]
    for body, status, slug in cases:
        r = await award(platform, games, body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["type"].endswith(f"/{slug}"), r.text
    # A refused award leaves its id free for corrected terms; one the provider never answered stays unseen.
    refused_id = cases[4][0]["award_id"]
    fixed = await award(platform, games, {**cases[4][0], "stake": 20})
    assert fixed.status_code == 200 and fixed.json()["award_id"] == refused_id
    unanswered = await award_view(platform, games, cases[5][0]["award_id"])
    assert unanswered.status_code == 404 and "not yet accepted" in unanswered.json()["detail"]


async def test_the_studio_takes_only_awards_the_platform_signed(platform: LocalPlatform) -> None:
    body = json.dumps({k: v for k, v in award_body(uuid.uuid4()).items() if k != "grant_id"}).encode()
    async with httpx.AsyncClient(base_url=platform.urls["rgs"]) as rgs:
        forged = await rgs.post("/free-spins", content=body,
                                headers=signed_headers("some-other-key-entirely", "/free-spins", body))
        unsigned = await rgs.post("/free-spins", content=body)
        signed = await rgs.post("/free-spins", content=body, headers=signed_headers(SECRET, "/free-spins", body))
    assert forged.status_code == 401 and unsigned.status_code == 401
    assert signed.status_code == 201, signed.text


# ---- free-spin wins refused before the wallet --------------------------------------------------------

async def test_free_spin_wins_the_award_does_not_allow_are_refused_with_the_balance(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, token = await session_for(platform, 700)
    other, _ = await session_for(platform, 0)
    studio = Studio(games, token)
    others = award_body(other)
    assert (await award(platform, games, others)).status_code == 200
    short = award_body(player, expires_in=2)
    assert (await award(platform, games, short)).status_code == 200
    await asyncio.sleep(2.5)
    for award_id, status, code in (("never-awarded", 404, "free-spin-award-not-found"),
                                   (others["award_id"], 403, "free-spin-award-mismatch"),
                                   (short["award_id"], 409, "free-spin-award-expired")):
        r = await studio.free_win(award_id, 300)
        assert r.status_code == status, r.text
        assert r.json()["code"] == code and r.json()["balance"] == 700
    for body in (others, short):
        view = (await award_view(platform, games, body["award_id"])).json()
        assert (view["spins_played"], view["won"]) == (0, 0)
    assert (await award_view(platform, games, short["award_id"])).json()["state"] == "expired"
