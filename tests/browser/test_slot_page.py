"""The RGS simulator's play page in a real browser: a player opens a launched session, spins with
the mouse and the keyboard, and after every round the balance on the page is the wallet's, read
through the platform's API; free spins the platform awards are shown and played; a stake the
balance cannot cover is refused in words; self-exclusion ends the session on the page. Framed by
the player site, the page posts each round to it — and a site that may not frame it gets nothing."""

from __future__ import annotations

import asyncio
import html
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gameplane import catalog
from gameplane.cli import registry
from gameplane.contracts import wallet as wallet_api
from gameplane.devtools import browser as chromium
from gameplane.devtools import localsecrets
from gameplane.devtools.harness import Platform
from gameplane.devtools.infra import free_port, wait_for_port
from gameplane.simulators.rgs.conformance import platform_awards
from gameplane.simulators.rgs.page import refusal_words

PASSWORD = "slot-Page-Spins-and-Pays-7"
GAME = "fruit-fives"


class Player:
    """A registered, logged-in player with money in the wallet and an open Fruit Fives session."""

    def __init__(self, platform: Platform, deposit: int) -> None:
        self.platform = platform
        self.gateway = httpx.Client(base_url=platform.gateway, timeout=30)
        email = f"slot-{uuid.uuid4().hex[:10]}@example.com"
        reg = self.gateway.post("/v1/players/register", json={
            "email": email, "password": PASSWORD, "date_of_birth": "1990-03-14", "country": "MT", "currency": "EUR"})
        assert reg.status_code == 201, reg.text
        login = self.gateway.post("/v1/players/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.player_id = login.json()["player_id"]
        self.auth = {"authorization": f"Bearer {login.json()['access_token']}"}
        # the money arrives as payments credits it (the PSP's hosted page is the web journey's part)
        body = wallet_api.DepositRequest(idempotency_key=f"slot-page:{uuid.uuid4()}", player_id=self.player_id,
                                         currency="EUR", amount=deposit, psp="test")
        r = httpx.post(platform.url("wallet") + wallet_api.PATH_DEPOSITS, json=body.model_dump(mode="json"),
                       headers=platform.identities().bearer("payments", "wallet"), timeout=30)
        assert r.status_code in (200, 201), r.text
        self.token = self._launch()

    def _launch(self) -> str:
        deadline = time.monotonic() + 30
        while True:  # sessions learns of a new player from players' event
            r = self.gateway.post("/v1/sessions", json={"game_id": GAME}, headers=self.auth)
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def wallet_balance(self) -> int:
        """What the player can play with, as the wallet reports it through the gateway."""
        r = self.gateway.get("/v1/wallet/balances", headers=self.auth)
        assert r.status_code == 200, r.text
        eur = next(b for b in r.json()["balances"] if b["currency"] == "EUR")
        return int(eur["cash"]) + int(eur["bonus"])

    def wallet_balance_internal(self) -> int:
        """The same from the wallet's own API (a self-excluded player's token may no longer read it)."""
        r = httpx.get(self.platform.url("wallet") + wallet_api.PATH_BALANCE.format(player_id=self.player_id,
                                                                                    currency="EUR"),
                      headers=self.platform.identities().bearer("games", "wallet"), timeout=30)
        assert r.status_code == 200, r.text
        return int(r.json()["cash"]) + int(r.json()["bonus"])

    def play_url(self, parent: str | None = None) -> str:
        url = f"{self.platform.url('rgs')}/play?token={self.token}&game={GAME}"
        return url + (f"&parent={parent}" if parent else "")


@pytest.fixture
def player_factory(platform: Platform) -> Iterator[Callable[[int], Player]]:
    made: list[Player] = []

    def make(deposit: int) -> Player:
        made.append(Player(platform, deposit))
        return made[-1]

    yield make
    for p in made:
        p.gateway.close()


def web_origin(platform: Platform) -> str:
    """The player site's origin in this run (`gameplane up` lets it frame the page)."""
    rgs_port = int(platform.url("rgs").rsplit(":", 1)[1])
    return registry.url(catalog.get("web"), rgs_port - catalog.get("rgs").port_offset)


def spin(where: Any) -> str:
    """Press Spin and wait for the answer; the result line as the player reads it."""
    where.locator("#spin").click()
    where.locator('#reels[aria-busy="false"]').wait_for()
    return str(where.locator("#result").inner_text())


def page_balance(where: Any) -> int:
    shown = where.locator("#balance")
    minor = int(shown.get_attribute("data-balance"))
    assert shown.inner_text() == f"{minor // 100}.{minor % 100:02d} EUR"  # the words match the number
    return minor


def test_three_spins_move_the_wallet_and_the_page_shows_its_balance(page: Any, player_factory: Any, snap: Any) -> None:
    player = player_factory(5_000)
    page.goto(player.play_url())
    assert page.get_by_role("heading", level=1).inner_text() == "Fruit Fives"
    assert page_balance(page) == player.wallet_balance() == 5_000
    snap(page, "rgs-play")
    page.get_by_label("Stake").select_option(label="2.00 EUR")
    results = [spin(page)]
    assert page_balance(page) == player.wallet_balance()
    # the keyboard plays too: focus the button and press Enter
    for _ in range(2):
        page.locator("#spin").focus()
        page.keyboard.press("Enter")
        page.locator('#reels[aria-busy="false"]').wait_for()
        results.append(page.locator("#result").inner_text())
        assert page_balance(page) == player.wallet_balance()
    assert all(r.startswith(("You won", "No win")) for r in results), results
    snap(page, "rgs-play-after-spins")


def test_awarded_free_spins_are_shown_and_played(page: Any, player_factory: Any, platform: Platform) -> None:
    player = player_factory(1_000)
    award = {"award_id": f"slot-page-{uuid.uuid4().hex}", "grant_id": f"slot-page-grant-{uuid.uuid4().hex}",
             "player_id": player.player_id, "currency": "EUR", "game_id": GAME, "spins": 2, "stake": 100,
             "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    # as the bonus service awards them: the grant at the wallet, then the award through games to the studio
    factory = platform_awards(platform.url("wallet"), platform.url("games"), platform.identities().key("bonus"))
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        awarded = thread.submit(asyncio.run, factory(award)).result()
    assert awarded.ok, awarded
    page.goto(player.play_url())
    assert page.locator("#free-spins").is_visible() and page.locator("#free-count").inner_text() == "2"
    assert page.locator("#spin").inner_text() == "Play free spin"
    first = spin(page)
    assert first.startswith("Free spin:"), first
    assert page.locator("#free-count").inner_text() == "1"
    assert page_balance(page) == player.wallet_balance()
    assert spin(page).startswith("Free spin:")
    assert page.locator("#free-spins").is_hidden() and page.locator("#spin").inner_text() == "Spin"
    assert page_balance(page) == player.wallet_balance()
    staked = spin(page)  # the award is spent: a paid spin again
    assert staked.startswith(("You won", "No win")), staked
    assert page_balance(page) == player.wallet_balance()


def test_a_stake_the_balance_cannot_cover_is_refused_in_words(page: Any, player_factory: Any) -> None:
    player = player_factory(500)
    page.goto(player.play_url())
    page.get_by_label("Stake").select_option(label="10.00 EUR")
    said = spin(page)
    assert said.startswith("Not enough money for this stake"), said
    assert page_balance(page) == player.wallet_balance() == 500
    assert page.locator("#spin").is_enabled()  # a smaller stake still plays
    page.get_by_label("Stake").select_option(label="1.00 EUR")
    assert spin(page).startswith(("You won", "No win"))
    assert page_balance(page) == player.wallet_balance()


def test_self_exclusion_ends_the_session_on_the_page(page: Any, player_factory: Any) -> None:
    player = player_factory(2_000)
    page.goto(player.play_url())
    assert spin(page).startswith(("You won", "No win"))
    r = player.gateway.post("/v1/players/me/self-exclusion", json={"months": 6}, headers=player.auth)
    assert r.status_code in (200, 201), r.text
    deadline = time.monotonic() + 30
    said = ""
    while time.monotonic() < deadline:  # the session ends when sessions hears of the exclusion
        said = spin(page)
        assert page_balance(page) == player.wallet_balance_internal()
        if not said.startswith(("You won", "No win")):
            break
        time.sleep(0.5)
    # whichever hears of the exclusion first refuses the bet — sessions (the session ended) or the
    # wallet (the account blocked) — and the page says why, in words naming self-exclusion
    assert said in (refusal_words("session-expired"), refusal_words("player-blocked")), said
    assert "self-exclusion" in said
    assert page.locator("#spin").is_disabled() and page.get_by_label("Stake").is_disabled()
    # and it cannot be opened again
    page.goto(player.play_url())
    assert page.get_by_role("heading", level=1).inner_text() in ("This game session has ended", "No such game session")


LOBBY = """<!doctype html><html lang="en"><head><title>Lobby</title><script src="/lobby.js"></script></head>
<body><main><h1>Lobby</h1><iframe title="Fruit Fives" src="{src}" width="700" height="800"></iframe></main>
</body></html>"""
LOBBY_JS = b"""window.rounds = [];
addEventListener("message", (e) => window.rounds.push({origin: e.origin, data: e.data}));"""


@pytest.fixture
def lobby() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A stand-in for the player site's lobby on a real local server (Chromium blocks a page it
    cannot place on the local network from framing one that is, so a page the browser makes up
    would not do): it frames what it is given and records the messages it receives."""
    pages: dict[str, bytes] = {"/lobby.js": LOBBY_JS}
    with chromium.static_site(pages) as url:
        yield url, pages


@pytest.fixture
def studio(platform: Platform, lobby: tuple[str, dict[str, bytes]], tmp_path: Path) -> Iterator[str]:
    """The RGS simulator once more, as its own process on the run's provider key, trusting the
    stand-in lobby as the player site (the run's RGS trusts the web's origin, where the real lobby
    is; the web's own journey plays through that one)."""
    port = free_port()
    secret = localsecrets.read(platform.data_dir)["providers"]["rgs"]["secret"]
    env = {**os.environ, "GP_RGS_PORT": str(port), "GP_RGS_HOST": "127.0.0.1", "GP_RGS_PLATFORM_URL": platform.gateway,
           "GP_RGS_PROVIDER_SECRET": secret, "GP_RGS_ALLOWED_PARENTS": json.dumps([lobby[0]])}
    with (tmp_path / "rgs.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gameplane.simulators.rgs"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_the_run_lets_only_the_player_site_frame_the_page(platform: Platform) -> None:
    """`gameplane up` names the web's origin as the one parent of the run's studio."""
    r = httpx.get(platform.url("rgs") + "/play", params={"token": "none"}, timeout=30)
    policy = dict(d.split(" ", 1) for d in r.headers["content-security-policy"].split("; "))
    assert policy["frame-ancestors"] == web_origin(platform)


def test_framed_by_the_player_site_each_round_is_posted_to_it(page: Any, player_factory: Any, studio: str,
                                                               lobby: tuple[str, dict[str, bytes]]) -> None:
    player = player_factory(3_000)
    site, pages = lobby
    play = player.play_url(site).replace(player.platform.url("rgs"), studio)
    pages["/lobby"] = LOBBY.format(src=html.escape(play)).encode()
    page.goto(f"{site}/lobby")
    game = page.frame_locator("iframe")
    for n in range(1, 3):
        spin(game)
        page.wait_for_function(f"window.rounds.length === {n}")
        message = page.evaluate("window.rounds")[-1]
        assert message["origin"] == studio
        assert message["data"]["type"] == "gameplane.round" and message["data"]["currency"] == "EUR"
        assert message["data"]["balance"] == player.wallet_balance() == page_balance(game)
        assert message["data"]["round_id"]

    # negative control: the run's studio does not trust this site — the browser will not show its page
    pages["/lobby"] = LOBBY.format(src=html.escape(player.play_url())).encode()
    page.goto(f"{site}/lobby")
    frame = next(f for f in page.frames if f != page.main_frame)
    frame.wait_for_load_state("load")
    assert frame.locator("#slot").count() == 0
    # and named as the parent it may not be, the studio refuses it outright
    refused = httpx.get(player.platform.url("rgs") + "/play",
                        params={"token": player.token, "parent": site}, timeout=30)
    assert refused.status_code == 403


def test_an_unknown_session_is_a_page_that_says_so(phone_page: Any, snap: Any, player_factory: Any) -> None:
    player = player_factory(1_000)
    phone_page.goto(player.play_url())
    assert phone_page.locator("#spin").is_visible()
    snap(phone_page, "rgs-play-phone")
    answer = phone_page.goto(player.play_url().replace(player.token, "no-such-session"))
    assert answer.status == 404
    assert phone_page.get_by_role("heading", level=1).inner_text() == "No such game session"
    snap(phone_page, "rgs-play-unknown")
