"""Bonuses on the player site, in a real browser: a live offer is listed, the player takes it, and
the wagering progress the page shows follows the stakes played in the lobby's game frame."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from test_web_journey import register_and_sign_in

from gameplane.devtools.harness import Platform
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

pytestmark = pytest.mark.timeout(300)
CHIP, TIMES = 1_000, 2  # EUR 10.00 to wager twice over: EUR 20.00


def publish_chip(platform: Platform) -> str:
    """A no-deposit offer, live, through bonus' back-office API (what a finance staff member does)."""
    ids = platform.identities()
    staff = {**ids.bearer("backoffice", "bonus"), STAFF_HEADER: issue_staff_token(
        ids.keys["players"], uuid.uuid4(), "web-bonus-staff", ["finance"])}  # type: ignore[arg-type]
    name = f"Welcome chip {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=platform.url("bonus"), headers=staff, timeout=30) as office:
        campaign = office.post("/internal/bonus/campaigns", json={"name": name})
        assert campaign.status_code == 201, campaign.text
        offer = office.post(f"/internal/bonus/campaigns/{campaign.json()['campaign_id']}/offers", json={
            "name": name, "kind": "no_deposit", "currency": "EUR", "amount": CHIP, "wagering_multiplier": TIMES,
            "contributions": {"slots": 100}})
        assert offer.status_code == 201, offer.text
        live = office.post(f"/internal/bonus/offers/{offer.json()['offer_id']}/publish", json={"version": 1})
        assert live.status_code == 200, live.text
    return name


def test_an_offer_taken_shows_its_wagering_progress_as_the_player_plays(
        page: Any, platform: Platform, snap: Callable[[Any, str], None]) -> None:
    name = publish_chip(platform)
    site = platform.url("web")
    register_and_sign_in(page, site)

    page.goto(f"{site}/bonuses")
    offer = page.locator(".cards li", has=page.get_by_role("heading", name=name))
    expect(offer).to_contain_text("wager 2× before it becomes cash")
    # Bonus learns of a new player from players' event: the first try may come before it.
    deadline = time.monotonic() + 30
    while True:
        page.locator(".cards li", has=page.get_by_role("heading", name=name)).get_by_role(
            "button", name="Take this offer").click()
        if page.get_by_role("status").filter(has_text="You have taken the offer.").count():
            break
        expect(page.get_by_role("alert")).to_contain_text("The offer cannot be taken")  # said in words
        assert time.monotonic() < deadline, "bonus never learnt of the player"
        time.sleep(0.5)
        page.goto(f"{site}/bonuses")
    grant = page.get_by_label(re.compile(r"^Wagering: "))
    expect(page.get_by_text("Wagering: €0.00 of €20.00")).to_be_visible()
    expect(grant).to_have_attribute("value", "0")
    snap(page, "web-bonuses-taken")

    # Three spins of EUR 1.00 on the bonus money, in the game frame.
    page.goto(f"{site}/lobby?q=fruit")
    expect(page.locator("#balance")).to_have_text("€10.00")
    page.get_by_role("button", name="Play Fruit Fives").click()
    game = page.frame_locator("#game")
    spin = game.get_by_role("button", name=re.compile(r"^(Spin|Play free spin)$"))
    game.get_by_label("Stake").select_option(label="1.00 EUR")
    for n in range(1, 4):
        spin.click()
        expect(page.locator("#balance")).to_have_attribute("data-rounds", str(n))
        expect(spin).to_be_enabled()

    # Bonus follows the wallet's events: the page shows the progress once it has counted them.
    deadline = time.monotonic() + 30
    while "Wagering: €3.00 of €20.00" not in page.content():
        assert time.monotonic() < deadline, page.locator(".cards").first.inner_text()
        time.sleep(0.5)
        page.goto(f"{site}/bonuses")
    expect(page.get_by_label("Wagering: €3.00 of €20.00")).to_have_attribute("value", "15")  # 3 of 20: 15 %
