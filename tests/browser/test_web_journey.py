"""The player site in a real browser, on a running platform: a player registers, signs in, pays a
deposit on the PSP simulator's hosted page and comes back, opens a game in the lobby's frame and
spins ten times — after each spin the balance on the site equals the wallet's, read through the
gateway — sets a deposit limit that refuses a larger deposit with the reason shown, then
self-excludes: the session ends and signing in again does not let them play."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from gameplane.devtools.harness import Platform

PASSWORD = "browser-Journey-Plays-27"
CARD = "4242 4242 4242 4242"

pytestmark = pytest.mark.timeout(600)


def api_login(gateway: str, email: str) -> dict[str, str]:
    r = httpx.post(f"{gateway}/v1/players/login", json={"email": email, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def wallet_total(gateway: str, auth: dict[str, str]) -> int:
    r = httpx.get(f"{gateway}/v1/wallet/balances", headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    eur = next(b for b in r.json()["balances"] if b["currency"] == "EUR")
    return int(eur["cash"]) + int(eur["bonus"])


def register_and_sign_in(page: Any, site: str, snap: Callable[[Any, str], None] | None = None) -> str:
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{site}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Date of birth").fill("1990-05-17")
    page.get_by_label("Country of residence").select_option("MT")
    if snap:
        snap(page, "web-register")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_contain_text("Your account is ready")
    if snap:
        snap(page, "web-login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site}/lobby")
    return email


def deposit(page: Any, site: str, amount: str) -> None:
    page.goto(f"{site}/cashier")
    page.get_by_label("Amount (EUR)").first.fill(amount)
    page.get_by_role("button", name="Deposit").click()


def test_the_registration_form_says_why_an_underage_player_is_refused(page: Any, platform: Platform) -> None:
    site = platform.url("web")
    page.goto(f"{site}/register")
    page.get_by_label("Email").fill(f"young-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Date of birth").fill("2015-03-01")
    page.get_by_label("Country of residence").select_option("GB")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_have_text("You must be at least 18 years old to play here.")
    # what was typed stays, but never the password
    expect(page.get_by_label("Country of residence")).to_have_value("GB")
    expect(page.get_by_label("Password")).to_have_value("")


def test_player_journey(page: Any, platform: Platform, snap: Callable[[Any, str], None]) -> None:
    site, gateway = platform.url("web"), platform.gateway
    email = register_and_sign_in(page, site, snap)

    # The session cookie: HttpOnly, Secure, SameSite=Strict, host-only (__Host-).
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-gp-player"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts see no cookie at all

    # Deposit on the PSP's hosted page, and back to the site.
    deposit(page, site, "100")
    expect(page).to_have_url(re.compile(r"^" + re.escape(platform.url("psp")) + r"/pay/"))
    page.get_by_label("Card number").fill(CARD)
    page.get_by_role("button", name=re.compile(r"^Pay 100\.00 EUR")).click()
    expect(page).to_have_url(re.compile(r"^" + re.escape(site) + r"/cashier/return\?"))
    expect(page.locator("#deposit-state")).to_have_text("Your deposit of €100.00 is in your balance.",
                                                        timeout=30_000)
    snap(page, "web-deposit-return")
    auth = api_login(gateway, email)
    assert wallet_total(gateway, auth) == 10_000

    page.goto(f"{site}/cashier")
    expect(page.locator("#payments")).to_contain_text("succeeded")

    # A withdrawal to the card deposited with: its state is shown, the money is held from the balance.
    page.get_by_label("Amount (EUR)").last.fill("10.50")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("status")).to_have_text("Your withdrawal is requested.")
    row = page.locator("#payments tbody tr", has_text="withdrawal")
    expect(row).to_contain_text("€10.50")
    # Risk reviews a withdrawal this soon after the first deposit; until then the player may cancel it.
    expect(row.locator(".state")).to_have_text("under review (risk review)")
    assert wallet_total(gateway, auth) == 10_000 - 1_050  # held from the balance meanwhile
    snap(page, "web-cashier")
    row.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Your withdrawal is cancelled; the money is back in your balance.")
    expect(page.locator("#payments tbody tr", has_text="withdrawal").locator(".state")).to_have_text(
        "cancelled (cancelled by the player)")
    base = wallet_total(gateway, auth)
    assert base == 10_000

    # The lobby: the catalogue of the player's jurisdiction, searchable.
    page.goto(f"{site}/lobby")
    expect(page.locator("#balance")).to_have_text("€100.00")
    page.get_by_label("Search").fill("no such game")
    page.get_by_role("button", name="Show games").click()
    expect(page.locator(".game")).to_have_count(0)
    page.get_by_label("Search").fill("fruit")
    page.get_by_role("button", name="Show games").click()
    expect(page.locator(".game")).to_have_count(1)
    snap(page, "web-lobby")

    # Reality checks every 10 minutes; the page's clock is Playwright's, so the test can move it.
    page.goto(f"{site}/safer-gambling")
    page.get_by_label("Remind me during play every").select_option("10")
    page.get_by_role("button", name="Save reality check").click()
    expect(page.get_by_role("status")).to_have_text("Your reality-check interval is saved.")
    page.clock.install()
    page.goto(f"{site}/lobby?q=fruit")

    # Open the game: the studio's page in the lobby's frame.
    page.get_by_role("button", name="Play Fruit Fives").click()
    expect(page).to_have_url(re.compile(r"/play/[0-9a-f-]{36}$"))
    game = page.frame_locator("#game")
    spin = game.get_by_role("button", name=re.compile(r"^(Spin|Play free spin)$"))
    expect(spin).to_be_enabled()

    shown = page.locator("#balance")
    seen: list[int] = []
    for n in range(1, 11):
        spin.click()
        expect(game.locator("#result")).not_to_have_text("Spinning…")
        expect(spin).to_be_enabled()
        # The site heard the round and read the balance again from the wallet (never from the message).
        expect(shown).to_have_attribute("data-rounds", str(n))
        total = wallet_total(gateway, auth)
        expect(shown).to_have_attribute("data-total", str(total))
        assert shown.inner_text().replace(",", "") == f"€{total // 100}.{total % 100:02d}"
        seen.append(total)
    # Ten stakes really moved money: the wallet's balance is not what it was (a win of
    # exactly every stake back, ten times over, is the only way it could be).
    assert seen[-1] != base or len(set(seen)) > 1
    snap(page, "web-play")

    # Ten minutes on: the reality check interrupts play with the session time and the net
    # position of this session's rounds (stakes and wins), which is what the wallet moved.
    dialog = page.get_by_role("dialog", name="Reality check")
    expect(dialog).to_be_hidden()
    page.clock.fast_forward("10:30")
    expect(dialog).to_be_visible()
    net = seen[-1] - base
    sign = "\u2212" if net < 0 else ""
    expect(page.locator("#reality-net")).to_have_text(f"{sign}€{abs(net) // 100}.{abs(net) % 100:02d}")
    snap(page, "web-reality-check")
    dialog.get_by_role("button", name="Keep playing").click()
    expect(dialog).to_be_hidden()

    page.goto(f"{site}/history")
    expect(page.locator("#history")).to_contain_text("bet")
    snap(page, "web-history")
    page.goto(f"{site}/bonuses")
    expect(page.get_by_role("heading", name="Your bonuses")).to_be_visible()
    snap(page, "web-bonuses")

    # A deposit limit, then a deposit over it is refused with the reason in words.
    page.goto(f"{site}/safer-gambling")
    page.get_by_label("Limit", exact=True).select_option("deposit")
    page.get_by_label("Period").select_option("day")
    page.get_by_label("Amount (EUR) or minutes").fill("150")
    page.get_by_role("button", name="Save limit").click()
    expect(page.get_by_role("status")).to_have_text("Your limit is saved.")
    expect(page.locator("#limits tr[data-kind=deposit][data-period=day]")).to_contain_text("€150.00")
    # Raising it waits the cooling-off period, shown with the time it takes effect; 150 holds meanwhile.
    page.get_by_label("Amount (EUR) or minutes").fill("500")
    page.get_by_role("button", name="Save limit").click()
    day_limit = page.locator("#limits tr[data-kind=deposit][data-period=day]")
    expect(day_limit.locator("td").nth(1)).to_have_text("€150.00")
    expect(day_limit.locator(".pending")).to_have_text(re.compile(r"^€500\.00 from \d{4}-\d\d-\d\d \d\d:\d\d UTC "
                                                                  r"\(cooling-off\)$"))
    expect(page.get_by_text("cooling-off period of 24 hours")).to_be_visible()
    snap(page, "web-safer-gambling")
    deposit(page, site, "100")
    expect(page.get_by_role("alert")).to_have_text(
        "Refused: this deposit is over your deposit limit; you can deposit up to €50.00 more in this period.")
    expect(page).to_have_url(f"{site}/cashier/deposit")  # no trip to the PSP
    assert wallet_total(gateway, auth) == seen[-1]

    # Self-exclusion: the session ends at once ...
    page.goto(f"{site}/safer-gambling")
    page.get_by_role("button", name="Self-exclude").click()
    expect(page.get_by_role("alert")).to_contain_text("Tick the box")  # nothing happens unconfirmed
    page.get_by_label("I understand that I cannot play until the exclusion ends").check()
    page.get_by_role("button", name="Self-exclude").click()
    expect(page).to_have_url(f"{site}/login?notice=self-excluded")
    expect(page.get_by_role("status")).to_contain_text("You are self-excluded")
    assert "__Host-gp-player" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{site}/lobby")
    expect(page).to_have_url(f"{site}/login")

    # ... and signing in again does not let them play: the lobby says why and offers no game.
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#play-blocked")).to_contain_text("You are self-excluded until")
    expect(page.get_by_role("button", name=re.compile("^Play "))).to_have_count(0)
    snap(page, "web-lobby-self-excluded")
    # The platform itself refuses play and deposits for the new session's token, whatever a page shows.
    fresh = api_login(gateway, email)
    launch = httpx.post(f"{gateway}/v1/sessions", json={"game_id": "fruit-fives"}, headers=fresh, timeout=10)
    assert launch.status_code == 403, launch.text
    page.goto(f"{site}/cashier")
    expect(page.get_by_role("heading", name="Deposit")).to_be_visible()
    expect(page.get_by_role("button", name="Deposit")).to_have_count(0)


def test_a_time_out_ends_the_session_and_blocks_play_until_it_ends(page: Any, platform: Platform) -> None:
    site = platform.url("web")
    email = register_and_sign_in(page, site)
    page.goto(f"{site}/safer-gambling")
    page.get_by_label("Time-out length").select_option("1")
    page.get_by_role("button", name="Start time-out").click()
    expect(page).to_have_url(f"{site}/login?notice=timeout")
    expect(page.get_by_role("status")).to_have_text("Your time-out has started. Play is blocked until it ends.")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#play-blocked")).to_contain_text("You are on a time-out until")
    expect(page.get_by_role("button", name=re.compile("^Play "))).to_have_count(0)


def test_the_lobby_works_on_a_phone(phone_page: Any, platform: Platform, snap: Callable[[Any, str], None]) -> None:
    site = platform.url("web")
    register_and_sign_in(phone_page, site)
    expect(phone_page.locator(".game").first).to_be_visible()
    # Nothing wider than the screen: no sideways scrolling on a 390 px phone.
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    snap(phone_page, "web-lobby-phone")
    phone_page.goto(f"{site}/safer-gambling")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    snap(phone_page, "web-safer-gambling-phone")
    phone_page.goto(f"{site}/help")
    snap(phone_page, "web-help-phone")


def test_a_feature_whose_service_is_down_says_it_is_unavailable(page: Any, platform: Platform,
                                                                  snap: Callable[[Any, str], None]) -> None:
    site = platform.url("web")
    register_and_sign_in(page, site)
    platform.stop_service("payments")
    try:
        page.goto(f"{site}/cashier")
        expect(page.locator("#unavailable")).to_have_text(
            "Deposits and withdrawals are unavailable right now. Your balance is safe.")
        expect(page.locator("#balance")).to_have_text("€0.00")  # the rest of the page still works
        snap(page, "web-cashier-unavailable")
        page.goto(f"{site}/lobby")
        expect(page.locator(".game").first).to_be_visible()  # play does not depend on payments
    finally:
        platform.start_service("payments")
    page.goto(f"{site}/cashier")
    expect(page.get_by_role("button", name="Deposit")).to_be_visible()  # and back when payments is


def test_a_player_submits_a_document_for_verification_and_sees_its_state(
        page: Any, platform: Platform, snap: Callable[[Any, str], None]) -> None:
    site, gateway = platform.url("web"), platform.gateway
    email = register_and_sign_in(page, site)
    page.get_by_role("link", name="Identity").click()
    expect(page.locator("#kyc-state")).to_contain_text("not verified yet")
    page.get_by_label("Document", exact=True).select_option("passport")
    page.get_by_role("button", name="Submit for verification").click()  # no reference: the browser asks
    expect(page).to_have_url(f"{site}/verify")
    page.get_by_label("Document reference").fill("   ")  # only spaces: the site refuses in words
    page.get_by_role("button", name="Submit for verification").click()
    expect(page.get_by_role("alert")).to_contain_text("Give the document's reference")
    page.get_by_label("Document reference").fill("VND-7731-passport")
    page.get_by_role("button", name="Submit for verification").click()
    expect(page.get_by_role("status")).to_contain_text("Your document is submitted")
    expect(page.locator("#kyc-state")).to_contain_text("being checked")
    expect(page.locator("#kyc-form")).to_have_count(0)  # nothing more to submit while it is checked
    snap(page, "web-verify")
    r = httpx.get(f"{gateway}/v1/players/me/kyc", headers=api_login(gateway, email), timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "pending", r.text  # players has it, not only the page


def tab_to(page: Any, element_id: str, presses: int = 30) -> None:
    """Press Tab until the element has the focus (what a keyboard user does); fail if it never does."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with the Tab key")


def test_a_keyboard_alone_signs_in_and_opens_a_game(page: Any, platform: Platform) -> None:
    site, gateway = platform.url("web"), platform.gateway
    email = f"keys-{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(f"{gateway}/v1/players/register", json={"email": email, "password": PASSWORD, "country": "MT",
                                                           "date_of_birth": "1985-11-30", "currency": "EUR"})
    assert r.status_code == 201, r.text
    page.goto(f"{site}/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()  # the first stop skips the menu
    tab_to(page, "email")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site}/lobby")
    play = page.get_by_role("button", name="Play Fruit Fives")
    for _ in range(30):
        page.keyboard.press("Tab")
        if play.evaluate("b => b === document.activeElement"):
            break
    expect(play).to_be_focused()
    # the focus is visible: an outline drawn around the focused control
    assert play.evaluate("b => getComputedStyle(b).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/play/[0-9a-f-]{36}$"))
    expect(page.frame_locator("#game").get_by_role("button", name="Spin")).to_be_visible()
