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
from sqlalchemy import text

from gameplane.contracts import wallet as wallet_api
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


# ---- against the wallet's grants (per-grant bonus money) ----------------------------------------------

async def open_grant(platform: LocalPlatform, player: uuid.UUID, grant_id: str | None = None) -> str:
    """A free-spins grant at the wallet, as bonus makes it: it starts at 0 and receives the wins."""
    grant_id = grant_id or f"g-{uuid.uuid4()}"
    body = wallet_api.BonusGrantRequest(idempotency_key=f"grant:{grant_id}", grant_id=grant_id, player_id=player,
                                        currency="EUR", amount=0)
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=20) as wallet:
        r = await wallet.post(wallet_api.PATH_BONUSES, json=body.model_dump(mode="json"),
                              headers=platform.headers("wallet", caller="bonus"))
    assert r.status_code in (200, 201), r.text
    return grant_id


async def grant_balances(platform: LocalPlatform, player: uuid.UUID) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=20) as wallet:
        r = await wallet.get(wallet_api.PATH_GRANTS.format(player_id=player, currency="EUR"),
                             headers=platform.headers("wallet", caller="bonus"))
    assert r.status_code == 200, r.text
    return {g["grant_id"]: g["balance"] for g in r.json()}


async def wallet_of(platform: LocalPlatform, player: uuid.UUID) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=20) as wallet:
        r = await wallet.get(wallet_api.PATH_BALANCE.format(player_id=player, currency="EUR"),
                             headers=platform.headers("wallet", caller="games"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_free_spin_wins_go_to_the_grant_and_a_replay_credits_once(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, token = await session_for(platform, 500)
    grant = await open_grant(platform, player)
    body = award_body(player, spins=3, stake=20, grant_id=grant)
    assert (await award(platform, games, body)).status_code == 200
    studio = Studio(games, token)
    won = await studio.free_win(body["award_id"], 160, tx="fs-1")
    assert won.status_code == 200, won.text
    assert won.json()["balance"] == 500 + 160
    assert (await studio.free_win(body["award_id"], 160, tx="fs-1")).json()["balance"] == 660  # replay
    zero = await studio.free_win(body["award_id"], 0, tx="fs-2")
    assert zero.status_code == 200 and zero.json()["balance"] == 660
    assert await grant_balances(platform, player) == {grant: 160}
    money = await wallet_of(platform, player)
    assert (money["cash"], money["bonus"]) == (500, 160)
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"], view["state"]) == (2, 160, "awarded")  # the zero win counted
    conflict = await studio.free_win(body["award_id"], 999, tx="fs-1")
    assert conflict.status_code == 409 and conflict.json()["code"] == "duplicate-transaction"
    above = await studio.free_win(body["award_id"], 20 * 5000 + 1)  # the stake x the game's maximum multiplier
    assert above.status_code == 400 and above.json()["code"] == "max-win-exceeded"
    last = await studio.free_win(body["award_id"], 40)
    assert last.status_code == 200 and last.json()["balance"] == 700
    over = await studio.free_win(body["award_id"], 40)
    assert over.status_code == 409 and over.json()["code"] == "free-spins-exhausted" and over.json()["balance"] == 700
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"], view["state"]) == (3, 200, "finished")
    assert await grant_balances(platform, player) == {grant: 200}


async def test_parallel_free_spin_wins_play_no_more_spins_than_awarded(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, token = await session_for(platform, 0)
    grant = await open_grant(platform, player)
    body = award_body(player, spins=2, stake=10, grant_id=grant)
    assert (await award(platform, games, body)).status_code == 200
    studio = Studio(games, token)
    amounts = [10 * (i + 1) for i in range(8)]
    replies = await asyncio.gather(*(studio.free_win(body["award_id"], a) for a in amounts))
    paid = [a for a, r in zip(amounts, replies, strict=True) if r.status_code == 200]
    refused = {r.json()["code"] for r in replies if r.status_code != 200}
    assert len(paid) == 2 and refused == {"free-spins-exhausted"}, [r.text for r in replies]
    assert await grant_balances(platform, player) == {grant: sum(paid)}
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"]) == (2, sum(paid))


async def test_copies_of_one_free_spin_win_sent_at_once_pay_and_count_once(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    player, token = await session_for(platform, 0)
    grant = await open_grant(platform, player)
    body = award_body(player, spins=2, stake=10, grant_id=grant)
    assert (await award(platform, games, body)).status_code == 200
    studio = Studio(games, token)
    copies = await asyncio.gather(*(studio.free_win(body["award_id"], 70, tx="same-spin", round_id="same-round")
                                    for _ in range(6)))
    assert [r.status_code for r in copies] == [200] * 6, [r.text for r in copies]
    assert {r.json()["balance"] for r in copies} == {70}
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"]) == (1, 70)
    assert await grant_balances(platform, player) == {grant: 70}
    # the award's other spin is still there
    assert (await studio.free_win(body["award_id"], 30)).status_code == 200
    assert (await studio.free_win(body["award_id"], 30)).json()["code"] == "free-spins-exhausted"


async def test_a_win_whose_credit_went_unanswered_keeps_its_spin_and_is_paid_on_retry_even_after_expiry(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    from gameplane.kit.http import ServiceClient

    player, token = await session_for(platform, 0)
    grant = await open_grant(platform, player)
    body = award_body(player, spins=1, stake=10, grant_id=grant, expires_in=3)
    assert (await award(platform, games, body)).status_code == 200
    studio = Studio(games, token)
    rt = platform.apps["games"].state.runtime
    real = rt.state.pop("wallet_client", None)
    # the wallet out of reach: a real connection refused at a closed port
    rt.state["wallet_client"] = ServiceClient("games", "wallet", closed_port_url(), rt.identity, timeout=1, retries=1)
    try:
        lost = await studio.free_win(body["award_id"], 40, tx="owed-spin", round_id="owed-round")
    finally:
        await rt.state.pop("wallet_client").aclose()
        if real is not None:
            rt.state["wallet_client"] = real
    assert lost.status_code == 503 and lost.json()["code"] == "dependency-unavailable", lost.text
    assert (await award_view(platform, games, body["award_id"])).json()["spins_played"] == 1  # held for the retry
    other = await studio.free_win(body["award_id"], 40)  # the award's one spin is taken
    assert other.status_code == 409 and other.json()["code"] == "free-spins-exhausted"
    await asyncio.sleep(3.5)
    retry = await studio.free_win(body["award_id"], 40, tx="owed-spin", round_id="owed-round")
    assert retry.status_code == 200 and retry.json()["balance"] == 40, retry.text
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"]) == (1, 40)
    assert await grant_balances(platform, player) == {grant: 40}
    # a new spin on the expired award is still refused
    late = await studio.free_win(body["award_id"], 40)
    assert late.status_code == 409 and late.json()["code"] in ("free-spins-exhausted", "free-spin-award-expired")


async def test_a_credit_the_wallet_refuses_gives_the_spin_back(platform: LocalPlatform,
                                                               games: httpx.AsyncClient) -> None:
    player, token = await session_for(platform, 100)
    studio = Studio(games, token)
    # a grant the wallet never made, and one forfeited before the spins were played
    never = award_body(player, spins=1, grant_id=f"g-unknown-{uuid.uuid4()}")
    closed_grant = await open_grant(platform, player)
    closed = award_body(player, spins=1, grant_id=closed_grant)
    for body in (never, closed):
        assert (await award(platform, games, body)).status_code == 200
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=20) as wallet:
        r = await wallet.post(wallet_api.PATH_BONUS_FORFEIT.format(grant_id=closed_grant),
                              json={"idempotency_key": f"forfeit:{closed_grant}"},
                              headers=platform.headers("wallet", caller="bonus"))
    assert r.status_code == 200, r.text
    for body in (never, closed):
        r = await studio.free_win(body["award_id"], 50)
        assert r.status_code == 409 and r.json()["code"] == "free-spin-grant-closed", r.text
        assert r.json()["balance"] == 100
        assert (await award_view(platform, games, body["award_id"])).json()["spins_played"] == 0


async def test_the_studio_plays_awarded_spins_without_bets_and_the_grant_receives_the_wins(
        platform: LocalPlatform, games: httpx.AsyncClient) -> None:
    """End to end: bonus's award through games -> the RGS simulator plays the spins (no bet) -> the
    wins are credited to the grant in the wallet (the paid spins after them are ordinary rounds) ->
    the grant converts to cash. Wagering is the bonus service's part, not shown here."""
    player = await new_player(platform, platform.extras["nats"], 2000)
    session = await launch(platform, player)
    async with httpx.AsyncClient(timeout=60) as browser:
        assert (await browser.get(session["launch_url"])).status_code == 200
    grant = await open_grant(platform, player)
    body = award_body(player, spins=30, stake=50, grant_id=grant)
    assert (await award(platform, games, body)).status_code == 200
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=120) as rgs:
        out = (await rgs.post(f"/sessions/{session['token']}/spins", json={"count": 35, "stake": 20})).json()
    assert (out["free_spins"], out["played"], out["settled"], out["free_spins_refused"]) == (30, 35, 35, 0)
    assert out["free_spins_won"] > 0  # 30 spins of Fruit Fives: a run without any win would prove nothing
    assert out["staked"] == 5 * 20  # only the five paid rounds were bets
    assert await grant_balances(platform, player) == {grant: out["free_spins_won"]}
    money = await wallet_of(platform, player)
    assert (money["cash"], money["bonus"]) == (2000 - out["staked"] + out["won"], out["free_spins_won"])
    view = (await award_view(platform, games, body["award_id"])).json()
    assert (view["spins_played"], view["won"], view["state"]) == (30, out["free_spins_won"], "finished")
    async with platform.apps["games"].state.runtime.database.session() as s:
        rounds = (await s.execute(text("SELECT bet_total, win_total FROM rounds WHERE player_id = :p"),
                                  {"p": player})).all()
    free = [r for r in rounds if r[0] == 0]
    assert len(rounds) == 35 and len(free) == 30 and sum(r[1] for r in free) == out["free_spins_won"]
    # ... and the grant converts to cash (bonus decides when; here straight away, no cap): exactly its wins
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=20) as wallet:
        r = await wallet.post(wallet_api.PATH_BONUS_CONVERT.format(grant_id=grant),
                              json={"idempotency_key": f"convert:{grant}"},
                              headers=platform.headers("wallet", caller="bonus"))
    assert r.status_code == 200, r.text
    after = await wallet_of(platform, player)
    assert (after["cash"], after["bonus"]) == (money["cash"] + out["free_spins_won"], 0)
    assert await grant_balances(platform, player) == {}
