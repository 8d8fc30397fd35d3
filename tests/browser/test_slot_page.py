"""The RGS simulator's play page in a real browser: a player opens a launched session, spins with
the mouse and the keyboard, and after every round the balance on the page is the wallet's, read
through the platform's API; free spins the platform awards are shown and played; a stake the
balance cannot cover is refused in words; self-exclusion ends the session on the page. Framed by
the player site, the page posts each round to it — and a site that may not frame it gets nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gameplane import catalog
from gameplane.cli import registry
from gameplane.contracts import wallet as wallet_api
from gameplane.devtools.harness import Platform
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
    # self-exclusion blocks the account: the wallet refuses the bet and the page says why
    assert said == refusal_words("player-blocked") and "self-exclusion" in said, said
    assert page.locator("#spin").is_disabled() and page.get_by_label("Stake").is_disabled()
    # and it cannot be opened again
    page.goto(player.play_url())
    assert page.get_by_role("heading", level=1).inner_text() in ("This game session has ended", "No such game session")


def test_framed_by_the_player_site_each_round_is_posted_to_it(page: Any, player_factory: Any,
                                                               platform: Platform) -> None:
    player = player_factory(3_000)
    rgs = platform.url("rgs")

    def lobby(parent: str) -> None:
        # the player site's frame, as the web's lobby embeds the game (served here by the browser itself)
        html = f"""<!doctype html><html lang="en"><head><title>Lobby</title></head><body><main><h1>Lobby</h1>
<iframe title="Fruit Fives" src="{player.play_url(parent)}" width="700" height="800"></iframe></main>
<script>window.rounds = []; addEventListener("message", e => rounds.push({{origin: e.origin, data: e.data}}));
</script></body></html>"""
        page.route(f"{parent}/lobby", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
        page.goto(f"{parent}/lobby")

    web = web_origin(platform)
    lobby(web)
    game = page.frame_locator("iframe")
    for n in range(1, 3):
        spin(game)
        page.wait_for_function(f"window.rounds.length === {n}")
        message = page.evaluate("window.rounds")[-1]
        assert message["origin"] == rgs
        assert message["data"]["type"] == "gameplane.round" and message["data"]["currency"] == "EUR"
        assert message["data"]["balance"] == player.wallet_balance() == page_balance(game)
        assert message["data"]["round_id"]

    # negative control: another site frames the same page — the browser refuses to show it
    other = "http://127.0.0.1:" + str(int(web.rsplit(":", 1)[1]) + 7)
    lobby(other)
    page.wait_for_load_state("load")
    frame = next(f for f in page.frames if f != page.main_frame)
    assert frame.locator("#slot").count() == 0


def test_an_unknown_session_is_a_page_that_says_so(phone_page: Any, snap: Any, player_factory: Any) -> None:
    player = player_factory(1_000)
    phone_page.goto(player.play_url())
    assert phone_page.locator("#spin").is_visible()
    snap(phone_page, "rgs-play-phone")
    answer = phone_page.goto(player.play_url().replace(player.token, "no-such-session"))
    assert answer.status == 404
    assert phone_page.get_by_role("heading", level=1).inner_text() == "No such game session"
    snap(phone_page, "rgs-play-unknown")
