"""The back office's pages against a real players service (real Postgres, a real HTTP listener):
staff sign-in with password and TOTP, the session cookie's flags, CSRF, the security headers, the
role table (navigation and the 403 page), a KYC decision taken on the page, and a screen whose
service is not running saying so instead of failing.

Which roles may open which screen is written out here from the issue's rule (support never sees
the finance screens; risk decides KYC, withdrawals and cases; finance the money screens; admin
everything, the audit log alone), not read from the back office's table."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from gameplane.backoffice.app import build_app as build_backoffice
from gameplane.backoffice.settings import BackofficeSettings
from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import ManualClock, as_service, as_staff
from gameplane.kit.staff import issue_staff_token
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.players.staff.accounts import bootstrap_admin
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

ADMIN, ADMIN_PASSWORD = "office-admin", "admin passphrase for the office"
STAFF_PASSWORD = "staff passphrase for the office"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
SITE = "https://backoffice.test"  # Secure cookies travel over https only, in httpx as in a browser

SCREENS = {"/players": "Players", "/withdrawals": "Held withdrawals", "/cases": "Risk cases", "/kpis": "KPIs",
           "/bonus": "Bonus campaigns", "/affiliates": "Affiliate statements", "/audit": "Audit log",
           "/staff": "Staff accounts"}
MAY_OPEN = {
    "support": {"/players"},
    "risk": {"/players", "/withdrawals", "/cases"},
    "finance": {"/players", "/withdrawals", "/kpis", "/bonus", "/affiliates"},
    "admin": set(SCREENS),
}


@dataclass
class Office:
    players: Any
    p: httpx.AsyncClient
    backoffice: Any
    clock: ManualClock
    admin_secret: str

    def client(self, backoffice: Any = None) -> httpx.AsyncClient:
        """A fresh browser (its own cookie jar), on this office's back office or on `backoffice`."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=backoffice or self.backoffice), base_url=SITE,
                                 headers={"accept": "text/html"})

    def code(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(self.clock.now)

    async def enrol(self, roles: list[str]) -> tuple[str, str]:
        admin = await self.staff_token(ADMIN, self.admin_secret, ADMIN_PASSWORD)
        name = f"s-{uuid.uuid4().hex[:10]}"
        r = await self.p.post("/internal/players/staff/accounts", headers={
            **as_service(self.players, "backoffice"), "X-Staff-Token": admin},
            json={"username": name, "roles": roles, "password": STAFF_PASSWORD})
        assert r.status_code == 201, r.text
        return name, r.json()["totp_secret"]

    async def staff_token(self, name: str, secret: str, password: str) -> str:
        self.clock.advance(seconds=30)  # a code is good once per 30 s step
        r = await self.p.post("/internal/players/staff/login", headers=as_service(self.players, "backoffice"),
                              json={"username": name, "password": password, "totp": self.code(secret)})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def sign_in(self, browser: httpx.AsyncClient, name: str, secret: str,
                      password: str = STAFF_PASSWORD) -> httpx.Response:
        form = await browser.get("/login")
        self.clock.advance(seconds=30)
        return await browser.post("/login", data={"csrf_token": csrf(form.text), "username": name,
                                                  "password": password, "totp": self.code(secret)})


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def nav(html: str) -> set[str]:
    block = re.search(r'<nav aria-label="Screens">(.*?)</nav>', html, re.S)
    return set(re.findall(r'href="(/[a-z]+)"', block.group(1))) if block else set()


office_players_url: list[str] = []  # the module's players, for a second back office


@pytest.fixture(scope="module")
async def office(module_service_settings: Any) -> AsyncIterator[Office]:
    clock = ManualClock()
    players = build_players(module_service_settings(PlayersSettings, **FAST_HASH), clock=clock)
    sock = listener()
    # served only: uvicorn runs its lifespan (entering it again would start a second runtime)
    async with served(players, sock) as players_url, httpx.AsyncClient(base_url=players_url) as p:
        office_players_url.append(players_url)
        enrolled = await bootstrap_admin(players.state.players, ADMIN, ADMIN_PASSWORD, force=False)
        # only players runs: every other screen's service is absent, as under `gameplane up --only`
        settings = BackofficeSettings(**dev_identities().settings("backoffice"), endpoints={"players": players_url},
                                      nats_url=None)
        backoffice = build_backoffice(settings)
        async with backoffice.router.lifespan_context(backoffice):
            yield Office(players, p, backoffice, clock, enrolled.totp_secret)


async def test_sign_in_takes_password_and_totp_and_sets_a_strict_session_cookie(office: Office) -> None:
    name, secret = await office.enrol(["support"])
    async with office.client() as browser:
        page = await browser.get("/login")
        assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"

        # a wrong code: refused, in words, on the form, and no session
        office.clock.advance(seconds=30)
        wrong = f"{(int(office.code(secret)) + 1) % 1_000_000:06d}"
        refused = await browser.post("/login", data={"csrf_token": csrf(page.text), "username": name,
                                                     "password": STAFF_PASSWORD, "totp": wrong})
        assert refused.status_code == 401 and 'role="alert"' in refused.text
        assert "__Host-gp-staff" not in refused.headers.get("set-cookie", "")

        signed = await office.sign_in(browser, name, secret)
        assert signed.status_code == 303, signed.text
        cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("__Host-gp-staff="))
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags, cookie
        home = await browser.get("/players")
        assert home.status_code == 200 and f"Signed in as <strong>{name}</strong>" in home.text


async def test_a_form_post_without_the_csrf_token_is_refused(office: Office) -> None:
    name, secret = await office.enrol(["risk"])
    async with office.client() as browser:
        await browser.get("/login")  # the CSRF cookie is set, but the form field is left out
        office.clock.advance(seconds=30)
        r = await browser.post("/login", data={"username": name, "password": STAFF_PASSWORD,
                                               "totp": office.code(secret)})
        assert r.status_code == 403 and "stale" in r.text
        assert "__Host-gp-staff" not in r.headers.get("set-cookie", "")
        # the same post from a client that is not a browser: the platform's problem+json
        r = await browser.post("/login", headers={"accept": "application/json"}, data={"username": name})
        assert r.status_code == 403 and r.json()["type"].endswith("/csrf-failed")


@pytest.mark.parametrize("role", ["support", "risk", "finance", "admin"])
async def test_each_role_sees_only_its_screens_and_a_direct_url_to_another_is_403(office: Office, role: str) -> None:
    name, secret = await office.enrol([role])
    async with office.client() as browser:
        assert (await office.sign_in(browser, name, secret)).status_code == 303
        players = await browser.get("/players")
        assert players.status_code == 200
        assert nav(players.text) == MAY_OPEN[role]
        for path in SCREENS:
            r = await browser.get(path)
            if path in MAY_OPEN[role]:
                # players runs; every other service is absent here: the page says so, it does not fail
                assert r.status_code in (200, 503), (path, r.status_code)
                assert r.status_code == 200 or "unavailable right now" in r.text
            else:
                assert r.status_code == 403 and "Not allowed" in r.text, (role, path)


async def test_a_screen_whose_service_is_not_running_says_it_is_unavailable(office: Office) -> None:
    name, secret = await office.enrol(["finance"])
    async with office.client() as browser:
        await office.sign_in(browser, name, secret)
        r = await browser.get("/withdrawals")
        assert r.status_code == 503 and "This feature is unavailable right now" in r.text and "payments" in r.text
        assert nav(r.text) == MAY_OPEN["finance"]  # the rest of the site still works around it


async def test_kyc_is_decided_on_the_player_page_by_risk_not_by_support(office: Office) -> None:
    body = {"email": f"kyc-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple",
            "date_of_birth": "1990-04-01", "country": "MT", "currency": "EUR"}
    r = await office.p.post("/v1/players/register", json=body, headers=as_service(office.players))
    pid = r.json()["id"]
    r = await office.p.post("/v1/players/me/kyc", headers=as_service(office.players, "gateway", uuid.UUID(pid)),
                            json={"document_type": "passport", "document_reference": "doc-1"})
    assert r.status_code == 202, r.text

    support, support_secret = await office.enrol(["support"])
    async with office.client() as browser:
        await office.sign_in(browser, support, support_secret)
        profile = await browser.get(f"/players/{pid}")
        assert profile.status_code == 200 and body["email"] in profile.text
        assert "Record the KYC decision" not in profile.text and "needs the role risk or admin" in profile.text
        assert 'id="risk-h"' not in profile.text  # risk features are for risk and admin
        r = await browser.post(f"/players/{pid}/kyc", data={"csrf_token": csrf(profile.text), "decision": "verified"})
        assert r.status_code == 403
    assert (await office.p.get(f"/internal/players/{pid}", headers=as_service(office.players, "backoffice"))
            ).json()["kyc_state"] == "pending"

    risk, risk_secret = await office.enrol(["risk"])
    async with office.client() as browser:
        await office.sign_in(browser, risk, risk_secret)
        listed = await browser.get("/players", params={"kyc": "pending", "q": body["email"][:12]})
        assert f'href="/players/{pid}"' in listed.text
        profile = await browser.get(f"/players/{pid}")
        # risk does not run here: its part of the profile says so, the rest of the page works
        assert "Risk features are unavailable right now" in profile.text and profile.status_code == 200
        r = await browser.post(f"/players/{pid}/kyc", data={"csrf_token": csrf(profile.text), "decision": "verified",
                                                             "reason": "passport checked"})
        assert r.status_code == 303 and r.headers["location"] == f"/players/{pid}?done=kyc-verified"
        shown = await browser.get(r.headers["location"])
        assert "KYC verified." in shown.text and 'id="kyc-state">verified<' in shown.text
        # deciding again: players refuses, and the page says why in words
        again = await browser.post(f"/players/{pid}/kyc", data={"csrf_token": csrf(shown.text),
                                                                 "decision": "rejected"})
        assert again.status_code == 422 and 'role="alert"' in again.text
    assert (await office.p.get(f"/internal/players/{pid}", headers=as_service(office.players, "backoffice"))
            ).json()["kyc_state"] == "verified"
    audit = await office.p.get("/internal/players/audit", params={"target": f"player:{pid}"},
                               headers={**as_service(office.players, "backoffice"),
                                        "X-Staff-Token": await office.staff_token(ADMIN, office.admin_secret,
                                                                                  ADMIN_PASSWORD)})
    assert [(r["actor"], r["action"]) for r in audit.json()["records"]][:1] == [(risk, "players.kyc_decision")]


async def test_an_expired_or_foreign_staff_token_ends_the_session(office: Office) -> None:
    keys = dev_identities()
    expired = issue_staff_token(keys.key("players"), uuid.uuid4(), "old", ["admin"], ttl=-60)
    forged = issue_staff_token(keys.key("wallet"), uuid.uuid4(), "forger", ["admin"])  # not players' key
    for token in (expired, forged):
        async with office.client() as browser:
            browser.cookies.set("__Host-gp-staff", token, domain="backoffice.test")
            r = await browser.get("/audit")
            assert r.status_code == 303 and r.headers["location"] == "/login?expired=true"
    async with office.client() as browser:  # never signed in: to the sign-in page, no "expired" message
        r = await browser.get("/players")
        assert r.status_code == 303 and r.headers["location"] == "/login"



async def test_a_note_on_the_profile_is_kept_with_its_author_and_audited(office: Office) -> None:
    body = {"email": f"note-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple",
            "date_of_birth": "1985-02-03", "country": "MT", "currency": "EUR"}
    pid = (await office.p.post("/v1/players/register", json=body, headers=as_service(office.players))).json()["id"]
    support, secret = await office.enrol(["support"])
    async with office.client() as browser:
        await office.sign_in(browser, support, secret)
        profile = await browser.get(f"/players/{pid}")
        assert "No notes yet." in profile.text
        empty = await browser.post(f"/players/{pid}/notes", data={"csrf_token": csrf(profile.text), "text": "  "})
        assert empty.status_code == 422 and "Write the note" in empty.text
        text = "Called about a <b>late</b> withdrawal; asked for a bank statement."
        r = await browser.post(f"/players/{pid}/notes", data={"csrf_token": csrf(profile.text), "text": text})
        assert r.status_code == 303
        shown = (await browser.get(r.headers["location"])).text
        assert "Note added." in shown and f"staff:{support}" in shown
        assert "Called about a &lt;b&gt;late&lt;/b&gt; withdrawal" in shown  # escaped, never markup
    notes = await office.p.get(f"/internal/players/{pid}/notes", headers={
        **as_service(office.players, "backoffice"),
        "X-Staff-Token": await office.staff_token(ADMIN, office.admin_secret, ADMIN_PASSWORD)})
    assert [(n["author"], n["text"]) for n in notes.json()] == [(f"staff:{support}", text)]
    audit = await office.p.get("/internal/players/audit", params={"target": f"player:{pid}"}, headers={
        **as_service(office.players, "backoffice"),
        "X-Staff-Token": await office.staff_token(ADMIN, office.admin_secret, ADMIN_PASSWORD)})
    assert [(a["actor"], a["action"], a["after"]["text"]) for a in audit.json()["records"]] == [
        (support, "players.note_added", text)]


async def test_sign_in_says_it_is_unavailable_while_players_does_not_run(office: Office) -> None:
    # a back office whose players endpoint is gone: the form answers in words, not with an error page
    lonely = build_backoffice(BackofficeSettings(**dev_identities().settings("backoffice"), endpoints={}))
    async with lonely.router.lifespan_context(lonely), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=lonely), base_url=SITE, headers={"accept": "text/html"}) as browser:
        form = await browser.get("/login")
        r = await browser.post("/login", data={"csrf_token": csrf(form.text), "username": "anyone",
                                               "password": "whatever it is", "totp": "123456"})
        assert r.status_code == 503 and "Sign-in is unavailable right now" in r.text


async def test_an_unknown_player_is_a_404_page_in_words_not_an_error(office: Office) -> None:
    name, secret = await office.enrol(["support"])
    async with office.client() as browser:
        await office.sign_in(browser, name, secret)
        r = await browser.get(f"/players/{uuid.uuid4()}")
        assert r.status_code == 404 and 'role="alert"' in r.text and "Back to Players" in r.text
        r = await browser.get("/players/not-a-uuid")
        assert r.status_code == 422 and "player_id" in r.text


async def test_an_admin_changes_roles_and_deactivates_an_account_on_the_staff_screen(office: Office) -> None:
    admin, admin_secret = await office.enrol(["admin"])
    target, target_secret = await office.enrol(["support"])
    async with office.client() as browser:
        await office.sign_in(browser, admin, admin_secret)
        page = await browser.get("/staff")
        assert page.status_code == 200 and f'id="staff-{target}"' in page.text
        assert target_secret not in page.text and admin_secret not in page.text  # no TOTP secret on the page
        staff_id = re.search(rf'id="staff-{target}".*?action="/staff/([0-9a-f-]+)"', page.text, re.S).group(1)
        none = await browser.post(f"/staff/{staff_id}", data={"csrf_token": csrf(page.text), "active": "yes"})
        assert none.status_code == 422 and "at least one role" in none.text
        r = await browser.post(f"/staff/{staff_id}", data={"csrf_token": csrf(page.text), "role": ["support", "risk"],
                                                            "active": "yes"})
        assert r.status_code == 303
    async with office.client() as browser:  # the next sign-in carries the new role
        await office.sign_in(browser, target, target_secret)
        assert nav((await browser.get("/players")).text) == MAY_OPEN["risk"]
    async with office.client() as browser:
        await office.sign_in(browser, admin, admin_secret)
        page = await browser.get("/staff")
        r = await browser.post(f"/staff/{staff_id}", data={"csrf_token": csrf(page.text), "role": "support"})
        assert r.status_code == 303  # unchecked `active`: deactivated
    async with office.client() as browser:
        refused = await office.sign_in(browser, target, target_secret)
        assert refused.status_code == 401 and "__Host-gp-staff" not in refused.headers.get("set-cookie", "")


def _links(html: str, rel: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(rf'<a href="([^"]+)" rel="{rel}">', html)]


async def test_a_search_a_players_transactions_and_the_audit_log_are_paged_and_every_row_is_shown_once(
        office: Office, module_service_settings: Any) -> None:
    """With a page size of 2: a search matching 5 players walks pages of 2, 2 and 1 (the filter kept
    in each link, each player once, in the players service's order); a player's 5 deposits walk
    back through the wallet's history cursor and return to the latest; the audit log of that player
    (3 notes in players, 2 adjustments in the wallet) walks 2, 2, 1 with one cursor per service."""
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    ids = []
    for i in range(5):
        body = {"email": f"{prefix}-{i}@example.com", "password": "correct horse battery staple",
                "date_of_birth": "1990-04-01", "country": "MT", "currency": "EUR"}
        r = await office.p.post("/v1/players/register", json=body, headers=as_service(office.players))
        ids.append(r.json()["id"])
        office.clock.advance(seconds=1)  # registration order is the search's order
    wallet = build_wallet(module_service_settings(WalletSettings))
    async with served(wallet) as wallet_url, httpx.AsyncClient(base_url=wallet_url) as wc:
        for amount in (101, 102, 103, 104, 105):
            r = await wc.post("/internal/wallet/deposits", headers=as_service(wallet, "payments"), json={
                "idempotency_key": f"pg-{uuid.uuid4()}", "player_id": ids[0], "currency": "EUR", "amount": amount})
            assert r.status_code == 200, r.text
        paged = build_backoffice(BackofficeSettings(**dev_identities().settings("backoffice"), nats_url=None,
                                                    endpoints={"players": office_players_url[0], "wallet": wallet_url},
                                                    page_size=2))
        name, secret = await office.enrol(["support"])
        async with paged.router.lifespan_context(paged), office.client(paged) as browser:
            await office.sign_in(browser, name, secret)
            seen, sizes, url = [], [], f"/players?q={prefix}"
            while url and len(sizes) < 10:  # a pager that never ends fails, not hangs
                page = await browser.get(url)
                assert page.status_code == 200, page.text
                rows = re.findall(r'<a href="/players/([0-9a-f-]{36})">', page.text)
                seen += rows
                sizes.append(len(rows))
                nxt = _links(page.text, "next")
                assert all(f"q={prefix}" in link for link in nxt + _links(page.text, "prev"))
                url = nxt[0] if nxt else ""
            assert sizes == [2, 2, 1] and seen == ids  # each once, in order across pages
            assert "Players 5–5" in page.text and _links(page.text, "prev") == [f"/players?q={prefix}&offset=2"]

            shown, sizes, url = [], [], f"/players/{ids[0]}"
            while url and len(sizes) < 10:  # a pager that never ends fails, not hangs
                page = await browser.get(url)
                assert page.status_code == 200, page.text
                rows = re.findall(r'<td>deposit</td><td class="num">([^<]+)</td>', page.text)
                shown += [int(re.sub(r"\D", "", amount)) for amount in rows]
                sizes.append(len(rows))
                nxt = [link.split("#")[0] for link in _links(page.text, "next")]
                url = nxt[0] if nxt else ""
            assert sizes == [2, 2, 1] and shown == [105, 104, 103, 102, 101]  # newest first, each once
            assert f'<a href="/players/{ids[0]}#money-h">Latest transactions</a>' in page.text
            stale = await browser.get(f"/players/{ids[0]}", params={"cursor": "not-a-cursor"})
            assert stale.status_code == 400 and 'role="alert"' in stale.text  # the wallet's refusal, in words

        admin_token = await office.staff_token(ADMIN, office.admin_secret, ADMIN_PASSWORD)
        for n in range(3):
            r = await office.p.post(f"/internal/players/{ids[0]}/notes", json={"text": f"note {n}"},
                                    headers={**as_service(office.players, "backoffice"), "X-Staff-Token": admin_token})
            assert r.status_code == 201, r.text
        for n in range(2):
            r = await wc.post("/internal/wallet/adjustments", headers=as_staff(wallet, "finance"), json={
                "idempotency_key": f"adj-{uuid.uuid4()}", "player_id": ids[0], "currency": "EUR",
                "amount": 10 + n, "reason": f"goodwill {n}"})
            assert r.status_code == 200, r.text
        name, secret = await office.enrol(["admin"])
        async with paged.router.lifespan_context(paged), office.client(paged) as browser:
            await office.sign_in(browser, name, secret)
            records, sizes, url = [], [], f"/audit?target=player:{ids[0]}"
            while url and len(sizes) < 10:
                page = await browser.get(url)
                assert page.status_code == 200, page.text
                rows = re.findall(r"<tr><td>[^<]*</td><td>(players|wallet)</td><td>[^<]*</td><td>([a-z._]+)</td>"
                                  r".*?<code>([^<]*)</code></td></tr>", page.text, re.S)
                records += rows
                sizes.append(len(rows))
                nxt = _links(page.text, "next")
                assert all(f"target=player%3A{ids[0]}" in link for link in nxt)
                url = nxt[0] if nxt else ""
        assert sizes == [2, 2, 1]
        assert sorted((svc, action) for svc, action, _ in records) == [
            *[("players", "players.note_added")] * 3, *[("wallet", "wallet.adjustment")] * 2]
        # each record once, each service's newest first
        assert [re.search(r"note \d", c).group(0) for svc, _, c in records if svc == "players"] == [
            "note 2", "note 1", "note 0"]
        assert [re.search(r"goodwill \d", c).group(0) for svc, _, c in records if svc == "wallet"] == [
            "goodwill 1", "goodwill 0"]
