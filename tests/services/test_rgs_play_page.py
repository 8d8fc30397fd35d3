"""The RGS simulator's play page at the route level: the page a player site frames opens only a
session the platform knows, says so in a page (not JSON) when it cannot, may be framed only by the
configured player site, and its spin endpoint tells the page why a spin was refused."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player

SECRET = "rgs-play-page-test-provider-secret"
WEB = "http://127.0.0.1:41010"  # the player site this studio lets frame its page
OTHER = "http://127.0.0.1:41999"


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"rgs_page_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET, with_rgs=True,
                              rgs_overrides={"seed": 7, "allowed_parents": [WEB + "/"]}) as p:
        p.extras["nats"] = nats_server.url
        yield p


async def session_for(platform: LocalPlatform, balance: int) -> tuple[uuid.UUID, str]:
    player = await new_player(platform, platform.extras["nats"], balance)
    return player, str((await launch(platform, player))["token"])


async def wallet_cash(platform: LocalPlatform, player: uuid.UUID) -> int:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"]) as http:
        r = await http.get(f"/internal/wallet/players/{player}/balances/EUR",
                           headers=platform.headers("wallet", caller="games"))
    assert r.status_code == 200, r.text
    return int(r.json()["cash"])


def csp(resp: httpx.Response) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in resp.headers["content-security-policy"].split("; ")}


async def test_the_page_opens_a_launched_session_framable_only_by_the_player_site(platform: LocalPlatform) -> None:
    player, token = await session_for(platform, 5_000)
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=30) as http:
        r = await http.get("/play", params={"token": token, "game": "fruit-fives", "parent": WEB})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    policy = csp(r)
    assert policy["frame-ancestors"] == WEB  # the configured origin, normalised
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert "x-frame-options" not in r.headers  # it cannot name the player site; CSP does
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert f'data-balance="{await wallet_cash(platform, player)}"' in r.text and "50.00 EUR" in r.text
    assert f'data-parent="{WEB}"' in r.text and f'data-token="{token}"' in r.text
    assert re.search(r'<label for="stake">Stake</label>', r.text) and 'id="spin"' in r.text
    assert len(re.findall(r'class="reel"', r.text)) == 5 and len(re.findall(r'class="sym sym-', r.text)) == 15
    # no inline script or style: the policy forbids them, so the page must not need them
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text) and "style=" not in r.text and "<style" not in r.text


async def test_an_unknown_token_is_a_404_page(platform: LocalPlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=30) as http:
        unknown = await http.get("/play", params={"token": "no-such-token", "parent": WEB})
        missing = await http.get("/play")
    for r in (unknown, missing):
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.text
        assert "No such game session" in r.text and 'lang="en"' in r.text
    assert "frame-ancestors" in unknown.headers["content-security-policy"]


async def test_a_site_that_is_not_allowed_gets_no_game_and_no_messages(platform: LocalPlatform) -> None:
    _, token = await session_for(platform, 1_000)
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=30) as http:
        refused = [await http.get("/play", params={"token": token, "parent": p})
                   for p in (OTHER, WEB + "/path", "javascript:alert(1)", "http://user@127.0.0.1:41010")]
        alone = await http.get("/play", params={"token": token})
    for r in refused:
        assert r.status_code == 403 and "This site may not show the game" in r.text, r.text
        assert "data-token" not in r.text
    # negative control: opened on its own (no parent) it plays, and sends round messages to nobody
    assert alone.status_code == 200 and 'data-parent=""' in alone.text


async def test_a_refused_spin_comes_back_with_its_reason_in_words_and_no_money_moves(platform: LocalPlatform) -> None:
    player, token = await session_for(platform, 500)
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=60) as http:
        assert (await http.get("/play", params={"token": token})).status_code == 200
        too_big = await http.post(f"/sessions/{token}/spins", json={"count": 1, "stake": 1000, "include_rounds": True})
        fits = await http.post(f"/sessions/{token}/spins", json={"count": 1, "stake": 100, "include_rounds": True})
    body = too_big.json()
    assert too_big.status_code == 200 and body["refused"] == 1 and body["stopped_code"] == "insufficient-funds"
    assert body["stopped_reason"].startswith("Not enough money") and not body["session_ended"]
    assert body["balance"] == 500 and body["rounds"][0]["error_code"] == "insufficient-funds"
    played = fits.json()
    assert played["settled"] == 1 and played["stopped"] is None and played["stopped_reason"] is None
    rnd = played["rounds"][0]
    assert played["balance"] == 500 - 100 + rnd["win"] == await wallet_cash(platform, player)
    assert len(rnd["window"]) == 5 and all(len(col) == 3 for col in rnd["window"])


async def test_the_page_script_and_style_are_served_from_the_package(platform: LocalPlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.urls["rgs"], timeout=30) as http:
        js = await http.get("/static/slot.js")
        css = await http.get("/static/slot.css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "postMessage" in js.text and "prefers-reduced-motion" in css.text
