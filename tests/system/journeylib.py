"""What a player does on a running `gameplane up`, over HTTP as the outside world does it: register
and log in through the gateway, pay a deposit on the PSP simulator's hosted page as a browser would,
read balances, play through the RGS simulator. Shared by the system tier's journeys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from gameplane import catalog
from gameplane.devtools.identities import Identities

PASSWORD = "journey-Pays-and-Plays-14"
CARD = "4242 4242 4242 4242"  # a valid (Luhn) test card the simulator pays with


class Form(HTMLParser):
    """The hosted page's form as a browser sees it: action, the fields it submits by default
    (checked radios, text inputs) and its submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self.radios: dict[str, list[str]] = {}
        self.buttons: dict[str, str] = {}  # value -> name

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self.method = a.get("action", ""), a.get("method", "get").lower()
        elif tag == "input" and a.get("name"):
            if a.get("type") == "radio":
                self.radios.setdefault(a["name"], []).append(a["value"])
                if "checked" in a:
                    self.fields[a["name"]] = a["value"]
            else:
                self.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "button" and a.get("type", "submit") == "submit" and a.get("name"):
            self.buttons[a["value"]] = a["name"]


def read_form(html: str) -> Form:
    form = Form()
    form.feed(html)
    assert form.action is not None and form.method == "post", html
    return form


def returns(gateway: str) -> set[tuple[str, str]]:
    """Where payments may send a player back from the hosted page on a `gameplane up` platform:
    the player site's cashier when the site runs (its port: the catalogue's offset from the
    gateway's), else the gateway's `/v1/payments`."""
    parts = urlsplit(gateway.rstrip("/"))
    base_port = (parts.port or 80) - catalog.get("gateway").port_offset
    site = f"{parts.scheme}://{parts.hostname}:{base_port + catalog.get('web').port_offset}"
    return {(f"{parts.scheme}://{parts.netloc}", "/v1/payments"), (site, "/cashier/return")}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `probe` until it returns something truthy (asynchronous webhooks, events, payouts)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {got!r})")
        time.sleep(0.25)


def pay_by_card(form: Form, card: str = CARD) -> dict[str, str]:
    assert "card" in form.radios["method"] and "card_number" in form.fields
    return {"method": "card", "card_number": card, form.buttons["pay"]: "pay"}


@dataclass
class Player:
    """A registered, logged-in player and the two clients a player uses: the gateway (the platform's
    API) and a browser (hosted payment page, game pages)."""

    gateway: httpx.Client
    browser: httpx.Client
    player_id: str
    email: str
    auth: dict[str, str]

    @classmethod
    def register(cls, gateway: httpx.Client, browser: httpx.Client, *, country: str = "MT",
                 prefix: str = "journey", affiliate_click_id: str | None = None) -> Player:
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": PASSWORD, "date_of_birth": "1991-07-04", "country": country,
                "currency": "EUR"}
        if affiliate_click_id is not None:  # the click id the landing page carried through sign-up
            body["affiliate_click_id"] = affiliate_click_id
        reg = gateway.post("/v1/players/register", json=body)
        assert reg.status_code == 201, reg.text
        p = cls(gateway, browser, "", email, {})
        p.login()
        return p

    def login(self) -> None:
        login = self.gateway.post("/v1/players/login", json={"email": self.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.player_id, self.auth = login.json()["player_id"], bearer(login.json()["access_token"])

    def payment(self, payment_id: str) -> dict[str, Any]:
        r = self.gateway.get("/v1/payments", headers=self.auth)
        assert r.status_code == 200, r.text
        return dict(next(p for p in r.json()["items"] if p["id"] == payment_id))

    def deposit(self, psp: str, amount: int, choose: Callable[[Form], dict[str, str]] = pay_by_card,
                outcome: str = "succeeded", hosted_pages: str | None = None) -> dict[str, Any]:
        """Create the deposit, complete the hosted page, come back to the platform, wait for the
        payment to settle (and, when it succeeded, to be credited)."""
        r = self.gateway.post("/v1/payments/deposits", headers=self.auth,
                              json={"amount": amount, "currency": "EUR", "psp": psp})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["state"] == "pending" and not created["credited"]
        if hosted_pages is not None:  # the page `gameplane up` printed (README, make run)
            assert created["redirect_url"] == hosted_pages.format(psp_reference=created["psp_reference"]), created
        page = self.browser.get(created["redirect_url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
        form = read_form(page.text)
        submitted = self.browser.post(urljoin(created["redirect_url"], form.action),  # type: ignore[arg-type]
                                      data={**form.fields, **choose(form)})
        assert submitted.status_code == 303, submitted.text
        back = urlsplit(submitted.headers["location"])
        assert (f"{back.scheme}://{back.netloc}", back.path) in returns(str(self.gateway.base_url))  # to the platform
        assert parse_qs(back.query)["status"] == [outcome]
        assert parse_qs(back.query)["reference"] == [created["reference"]]

        def settled() -> dict[str, Any] | None:
            p = self.payment(created["id"])
            return p if p["state"] != "pending" and (p["credited"] or outcome != "succeeded") else None

        done = wait_for(f"{psp} deposit {outcome}", settled)
        assert done["state"] == outcome and done["amount"] == amount, done
        assert done["credited"] == (outcome == "succeeded")
        return dict(done)

    def withdraw(self, amount: int, method_fingerprint: str) -> dict[str, Any]:
        """Withdraw to a method deposited with; wait until the PSP paid it and the wallet posted it."""
        r = self.gateway.post("/v1/payments/withdrawals", headers=self.auth, json={
            "amount": amount, "currency": "EUR", "method_fingerprint": method_fingerprint})
        assert r.status_code == 201, r.text
        withdrawal = dict(r.json())
        assert withdrawal["state"] in ("approved", "processing"), withdrawal  # no hold, no review
        # The PSP's answer lands first ("paid"), the wallet posts the hold after it ("credited").
        paid = wait_for("payout paid and posted", lambda: (p := self.payment(withdrawal["id"]))["state"] not in (
            "approved", "processing") and (p["credited"] or p["state"] != "paid") and p)
        assert paid["state"] == "paid" and paid["credited"], paid
        return withdrawal

    def opt_in(self, offer_id: str) -> dict[str, Any]:
        """Opt in to a bonus offer. Bonus learns of a new player from players' event, so right after
        registering it may not know them yet (403 `player-unknown`): a client tries again."""
        def attempt() -> dict[str, Any] | None:
            r = self.gateway.post(f"/v1/bonus/offers/{offer_id}/opt-in", headers=self.auth)
            if r.status_code == 403 and r.json().get("reason") == "player-unknown":
                return None
            assert r.status_code == 201, r.text
            return dict(r.json())

        return dict(wait_for("bonus knows the player", attempt, timeout=30))

    def balance(self, currency: str = "EUR") -> dict[str, Any]:
        r = self.gateway.get("/v1/wallet/balances", headers=self.auth)
        assert r.status_code == 200, r.text
        return dict(next(b for b in r.json()["balances"] if b["currency"] == currency))

    def spin(self, rgs_url: str, game_id: str, count: int, stake: int) -> dict[str, Any]:
        """Open a game session and spin `count` times at the RGS simulator; its report of the rounds."""
        session = self.gateway.post("/v1/sessions", json={"game_id": game_id}, headers=self.auth)
        assert session.status_code == 201, session.text
        launch_url = session.json()["launch_url"]
        assert launch_url.startswith(rgs_url + "/launch?")
        table = self.browser.get(launch_url)
        assert table.status_code == 200, table.text
        played = self.browser.post(f"{rgs_url}/sessions/{session.json()['token']}/spins",
                                   json={"count": count, "stake": stake}, timeout=120)
        assert played.status_code == 200, played.text
        return dict(played.json())


def publish_offers(office: httpx.Client, *terms: dict[str, Any]) -> dict[str, str]:
    """Through bonus' back office (`office` carries the staff headers): a campaign, one offer per
    terms, each published at version 1. The offer ids by kind."""
    campaign = office.post("/internal/bonus/campaigns", json={"name": f"journey-{uuid.uuid4().hex[:6]}"})
    assert campaign.status_code == 201, campaign.text
    offers = {}
    for t in terms:
        made = office.post(f"/internal/bonus/campaigns/{campaign.json()['campaign_id']}/offers", json=t)
        assert made.status_code == 201, made.text
        live = office.post(f"/internal/bonus/offers/{made.json()['offer_id']}/publish", json={"version": 1})
        assert live.status_code == 200 and live.json()["state"] == "live", live.text
        offers[t["kind"]] = made.json()["offer_id"]
    return offers


def reconcile_cli(platform: Any, secrets: dict[str, Any], ids: Identities, day: date,
                  database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m gameplane.payments reconcile`, configured as payments' pod is (its database, PSPs,
    the wallet's address, its own key): what an operator runs. It also books the PSPs' fees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GP_")}
    env |= ids.env("payments") | {
        "GP_PAYMENTS_DATABASE_URL": database_url or secrets["databases"]["payments"],
        "GP_PAYMENTS_PSPS": json.dumps(secrets["psps"]),
        "GP_PAYMENTS_ENDPOINTS": json.dumps(secrets["services"]),
        "GP_PAYMENTS_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "gameplane.payments", "reconcile", "--date", day.isoformat()],
                          env=env, capture_output=True, text=True, timeout=180)
