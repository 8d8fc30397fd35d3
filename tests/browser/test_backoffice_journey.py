"""The back office in a real browser on a real `gameplane up`: a risk officer signs in with
password and TOTP, approves a pending KYC, releases a withdrawal the AML threshold held, and an
admin finds both actions, under the officer's name, in the audit log; a support agent sees no
finance screen, in the navigation or by typing its address. Every page is checked with axe-core
and kept as a screenshot (docs/screenshots/ holds a few of them).

The staff accounts are made as an operator makes them: the first admin by the players CLI
(docs/runbooks/staff-bootstrap.md), the others by that admin through the staff API; the codes are
computed with pyotp from the secrets shown at enrolment. What the page claims is checked against
the services' own APIs (players' KYC state, payments' withdrawal state, the audit records)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pyotp
import pytest
from tests.system.journeylib import Player, wait_for

from gameplane.kit.staff import STAFF_HEADER

ADMIN_PASSWORD = "first admin passphrase 7"
STAFF_PASSWORD = "staff member passphrase 9"
DEPOSIT, WITHDRAWAL = 150_000, 60_000  # EUR 1,500 in, EUR 600 out: past the EUR 2,000 AML threshold together


@dataclass
class Staff:
    username: str
    secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


@dataclass
class Office:
    url: str
    players: httpx.Client  # players' internal API as the back office calls it (service token)
    payments: httpx.Client
    staff: dict[str, Staff]
    admin_token: str

    def as_admin(self) -> dict[str, str]:
        return {STAFF_HEADER: self.admin_token}


@pytest.fixture(scope="module")
def office(platform: Any) -> Office:
    ids = platform.identities()
    info = platform.info
    admin = f"admin-{uuid.uuid4().hex[:6]}"

    def create_admin(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gameplane.players.staff", "create-admin", "--username", admin,
             "--password-stdin", *extra], input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, timeout=120,
            env={**os.environ, "GP_PLAYERS_DATABASE_URL": info["databases"]["players"]})

    made = create_admin()
    if made.returncode != 0 and "exists already" in made.stderr:  # another module of the session made one
        made = create_admin("--force")
    assert made.returncode == 0, made.stderr
    secret = re.search(r"TOTP secret \(shown once\): *([A-Z2-7]+)", made.stdout)
    assert secret, made.stdout
    players = httpx.Client(base_url=platform.url("players"), timeout=30,
                           headers=ids.bearer("backoffice", "players", ttl=3600))
    login = players.post("/internal/players/staff/login", json={
        "username": admin, "password": ADMIN_PASSWORD, "totp": pyotp.TOTP(secret.group(1)).now()})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    staff = {}
    # one account per person signing in below: a TOTP code is taken once per 30 s step and account
    for person, role in (("risk", "risk"), ("support", "support"), ("admin", "admin"), ("finance", "finance"),
                         ("phone", "admin"), ("reviewer", "risk"), ("keyboard", "support")):
        name = f"{person}-{uuid.uuid4().hex[:6]}"
        r = players.post("/internal/players/staff/accounts", headers={STAFF_HEADER: token},
                         json={"username": name, "roles": [role], "password": STAFF_PASSWORD})
        assert r.status_code == 201, r.text
        staff[person] = Staff(name, r.json()["totp_secret"])
    payments = httpx.Client(base_url=platform.url("payments"), timeout=30,
                            headers=ids.bearer("backoffice", "payments", ttl=3600))
    return Office(platform.url("backoffice"), players, payments, staff, token)


def sign_in(page: Any, office: Office, who: Staff) -> None:
    page.goto(f"{office.url}/login")
    page.get_by_label("Username").fill(who.username)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_label("Authenticator code").fill(who.code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/players$"))
    assert page.get_by_text(f"Signed in as {who.username}").is_visible()


def nav_links(page: Any) -> set[str]:
    return set(page.get_by_role("navigation", name="Screens").get_by_role("link").all_inner_texts())


def test_sign_in_with_totp_approve_kyc_release_a_held_withdrawal_and_both_are_in_the_audit_log(
        platform: Any, office: Office, page: Any, snap: Any) -> None:
    gateway = httpx.Client(base_url=platform.gateway, timeout=30)
    # a player whose identity documents wait for a decision
    kyc_player = Player.register(gateway, httpx.Client(timeout=30), prefix="office-kyc")
    r = gateway.post("/v1/players/me/kyc", headers=kyc_player.auth,
                     json={"document_type": "passport", "document_reference": "vendor-doc-1"})
    assert r.status_code == 202, r.text
    # a player whose withdrawal the AML threshold holds (unverified identity, EUR 2,100 moved)
    rich = Player.register(gateway, httpx.Client(timeout=30), prefix="office-aml")
    card = rich.deposit("simpsp", DEPOSIT)["method_fingerprint"]
    r = gateway.post("/v1/payments/withdrawals", headers=rich.auth,
                     json={"amount": WITHDRAWAL, "currency": "EUR", "method_fingerprint": card})
    assert r.status_code == 201 and r.json()["state"] == "held", r.text
    held = r.json()

    page.goto(f"{office.url}/players")  # not signed in: to the sign-in page
    assert page.url.endswith("/login")
    snap(page, "backoffice-login")
    risk = office.staff["risk"]
    sign_in(page, office, risk)
    assert nav_links(page) == {"Players", "Held withdrawals", "Risk cases"}
    # the session is the officer's own staff token, out of reach of scripts and never in a page
    session = {c["name"]: c for c in page.context.cookies()}["__Host-gp-staff"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "" and session["value"] not in page.content()

    # KYC: find the pending player, open the profile, verify
    page.get_by_label("Email or player id").fill(kyc_player.email)
    page.get_by_label("KYC state").select_option("pending")
    page.get_by_role("button", name="Search").click()
    snap(page, "backoffice-players")
    page.get_by_role("link", name=kyc_player.email).click()
    assert page.locator("#kyc-state").inner_text() == "pending"
    assert page.locator("#harm-score").inner_text().startswith("0")  # risk's view of the player, for risk
    snap(page, "backoffice-player")
    page.get_by_label("Verify the identity").check()
    page.get_by_label("Reason (kept in the audit log)").fill("passport matches the vendor's check")
    page.get_by_role("button", name="Record the KYC decision").click()
    assert page.get_by_role("status").filter(has_text="KYC verified.").is_visible()
    assert page.locator("#kyc-state").inner_text() == "verified"
    assert office.players.get(f"/internal/players/{kyc_player.player_id}").json()["kyc_state"] == "verified"

    # the held withdrawal: release it with a reason
    page.get_by_role("link", name="Held withdrawals").click()
    row = page.locator(f"#withdrawal-{held['id']}")
    assert "EUR 600.00" in row.inner_text() and "aml-kyc-required" in row.inner_text()
    snap(page, "backoffice-withdrawals")
    row.get_by_label(f"Reason for {held['reference']}").fill("source of funds documented")
    row.get_by_role("button", name="Release").click()
    assert page.get_by_role("status").filter(has_text="Withdrawal released").is_visible()
    assert page.locator(f"#withdrawal-{held['id']}").count() == 0
    paid = wait_for("the released withdrawal paid out", lambda: (
        p := rich.payment(held["id"]))["state"] == "paid" and p["credited"] and p)
    assert paid["amount"] == WITHDRAWAL
    assert rich.balance()["cash"] == DEPOSIT - WITHDRAWAL

    # an admin reads both actions, under the officer's name, in the audit log
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    sign_in(page, office, office.staff["admin"])
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Staff username").fill(risk.username)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr").all_inner_texts()
    assert any("players.kyc_decision" in r and f"player:{kyc_player.player_id}" in r for r in rows), rows
    assert any("payments.withdrawal.approve" in r and f"payment:{held['id']}" in r for r in rows), rows
    snap(page, "backoffice-audit")
    # the page showed what the services recorded
    recorded = office.players.get("/internal/players/audit", headers=office.as_admin(),
                                  params={"target": f"player:{kyc_player.player_id}"}).json()["records"]
    assert [(r["actor"], r["action"]) for r in recorded] == [(risk.username, "players.kyc_decision")]
    recorded = office.payments.get("/internal/payments/audit", headers=office.as_admin(),
                                   params={"target": f"payment:{held['id']}"}).json()["records"]
    assert [(r["actor"], r["action"]) for r in recorded] == [(risk.username, "payments.withdrawal.approve")]


def test_a_risk_case_is_taken_and_approved_on_its_screen_and_the_withdrawal_is_paid(
        platform: Any, office: Office, page: Any, snap: Any) -> None:
    gateway = httpx.Client(base_url=platform.gateway, timeout=30)
    player = Player.register(gateway, httpx.Client(timeout=30), prefix="office-case")
    card = player.deposit("simpsp", 20_000)["method_fingerprint"]
    # asked at once, before risk has heard of the card from payments' events: a new method, reviewed
    r = gateway.post("/v1/payments/withdrawals", headers=player.auth,
                     json={"amount": 1_500, "currency": "EUR", "method_fingerprint": card})
    assert r.status_code == 201 and r.json()["state"] == "review", r.text
    withdrawal = r.json()

    reviewer = office.staff["reviewer"]
    sign_in(page, office, reviewer)
    # the withdrawal waits on its case: releasing it here is refused, in words
    page.goto(f"{office.url}/withdrawals?state=review")
    row = page.locator(f"#withdrawal-{withdrawal['id']}")
    row.get_by_label(f"Reason for {withdrawal['reference']}").fill("looks fine")
    row.get_by_role("button", name="Release").click()
    assert page.get_by_role("alert").filter(has_text="case").is_visible()
    assert player.payment(withdrawal["id"])["state"] == "review"

    page.get_by_role("link", name="Risk cases").click()
    case = page.get_by_role("row").filter(has=page.get_by_role("link", name=player.player_id))
    assert "EUR 15.00" in case.inner_text()
    case.get_by_role("button", name="Take it").click()
    assert page.get_by_role("status").filter(has_text="Case assigned.").is_visible()
    case = page.get_by_role("row").filter(has=page.get_by_role("link", name=player.player_id))
    assert reviewer.username in case.inner_text()
    snap(page, "backoffice-cases")
    case.get_by_label("Reason").fill("card seen on the deposit a minute earlier")
    case.get_by_role("button", name="Approve").click()
    assert page.get_by_role("status").filter(has_text="Case decided.").is_visible()
    assert page.get_by_role("row").filter(has=page.get_by_role("link", name=player.player_id)).count() == 0
    paid = wait_for("the approved withdrawal paid out", lambda: (
        p := player.payment(withdrawal["id"]))["state"] == "paid" and p["credited"] and p)
    assert paid["amount"] == 1_500


def test_support_sees_no_finance_screen_in_the_navigation_or_by_its_address(
        office: Office, page: Any, snap: Any) -> None:
    sign_in(page, office, office.staff["support"])
    assert nav_links(page) == {"Players"}
    for path in ("/withdrawals", "/kpis", "/bonus", "/affiliates", "/audit", "/cases"):
        response = page.goto(f"{office.url}{path}")
        assert response.status == 403, path
        assert page.get_by_role("heading", name="Not allowed").is_visible()
    snap(page, "backoffice-forbidden")
    # the negative control: the screen support may use opens, and support writes notes there
    assert page.goto(f"{office.url}/players").status == 200
    page.get_by_role("link", name=re.compile(r"@example\.com$")).first.click()
    page.get_by_label(re.compile("^New note")).fill("Player called: asked how long a withdrawal takes.")
    page.get_by_role("button", name="Add note").click()
    assert page.get_by_role("status").filter(has_text="Note added.").is_visible()
    assert page.get_by_text(f"staff:{office.staff['support'].username}").is_visible()


def test_finance_screens_render_and_say_when_their_service_is_down(
        platform: Any, office: Office, page: Any, phone_page: Any, snap: Any) -> None:
    sign_in(page, office, office.staff["finance"])
    assert nav_links(page) == {"Players", "Held withdrawals", "KPIs", "Bonus campaigns", "Affiliate statements"}
    page.get_by_role("link", name="KPIs").click()
    assert page.get_by_role("heading", name="RTP per game against certified").is_visible()
    assert page.locator("svg[role=img]").count() == 3
    # today's row says what analytics says; hold worked out here from its stakes and GGR
    today = datetime.now(UTC).date().isoformat()
    analytics = httpx.Client(base_url=platform.url("analytics"), timeout=30, headers={
        **platform.identities().bearer("backoffice", "analytics"), **office.as_admin()})
    report = analytics.get("/internal/analytics/kpis", params={"from": today, "to": today, "currency": "EUR"})
    assert report.status_code == 200, report.text
    for row in report.json()["rows"]:
        shown = page.get_by_role("row", name=re.compile(row["day"])).inner_text().split("\t")
        ggr = row["ggr"]
        assert shown[2] == f"EUR {'-' if ggr < 0 else ''}{abs(ggr) // 100:,}.{abs(ggr) % 100:02d}", shown
        if row["stakes"]:
            assert shown[4] == f"{100 * row['ggr'] / row['stakes']:.2f} %", shown
    snap(page, "backoffice-kpis")
    page.get_by_role("link", name="Bonus campaigns").click()
    campaign = f"Winter welcome {uuid.uuid4().hex[:4]}"
    page.get_by_label("New campaign name").fill(campaign)
    page.get_by_role("button", name="Create campaign").click()
    assert page.get_by_role("status").filter(has_text="Campaign created.").is_visible()
    section = page.locator("section").filter(has=page.get_by_role("heading", name=campaign))
    section.get_by_label("No-deposit offer name").fill("Ten on the house")
    section.get_by_label("Bonus (minor units)").fill("1000")
    section.get_by_role("button", name="Add offer").click()
    assert page.get_by_role("status").filter(has_text="Offer created as a draft.").is_visible()
    section = page.locator("section").filter(has=page.get_by_role("heading", name=campaign))
    assert "EUR 10.00" in section.get_by_role("row", name=re.compile("Ten on the house")).inner_text()
    section.get_by_role("button", name=re.compile("Publish version 1")).click()
    assert page.get_by_role("status").filter(has_text="Offer published.").is_visible()
    section = page.locator("section").filter(has=page.get_by_role("heading", name=campaign))
    assert "\tlive\t" in section.get_by_role("row", name=re.compile("Ten on the house")).inner_text()
    snap(page, "backoffice-bonus")
    affiliates = httpx.Client(base_url=platform.url("affiliates"), timeout=30, headers={
        **platform.identities().bearer("backoffice", "affiliates"), **office.as_admin()})
    partner = f"Partner {uuid.uuid4().hex[:4]}"
    made = affiliates.post("/internal/affiliates/affiliates", json={
        "name": partner, "deal": {"currency": "EUR", "cpa_amount": 2_500}})
    assert made.status_code == 201, made.text
    page.get_by_role("link", name="Affiliate statements").click()
    statement = page.get_by_role("row", name=re.compile(partner)).inner_text()
    assert "open" in statement and "EUR 0.00 (0)" in statement, statement  # no referred player yet
    # the current month has not ended: affiliates refuses to close it, and the page says why
    page.get_by_role("button", name=re.compile(r"^Close \d{4}-\d{2}$")).click()
    assert page.get_by_role("alert").filter(has_text=re.compile("only after it ended|closed in order")).is_visible()
    assert "open" in page.get_by_role("row", name=re.compile(partner)).inner_text()
    snap(page, "backoffice-affiliates")

    platform.stop_service("affiliates")
    try:
        response = page.goto(f"{office.url}/affiliates")
        assert response.status == 503
        assert page.get_by_text("This feature is unavailable right now").is_visible()
        assert nav_links(page) == {"Players", "Held withdrawals", "KPIs", "Bonus campaigns", "Affiliate statements"}
        snap(page, "backoffice-unavailable")
    finally:
        platform.start_service("affiliates")



def test_the_back_office_is_usable_on_a_phone_sized_screen(office: Office, phone_page: Any, snap: Any) -> None:
    sign_in(phone_page, office, office.staff["phone"])
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    assert nav_links(phone_page) == {"Players", "Held withdrawals", "Risk cases", "KPIs", "Bonus campaigns",
                                     "Affiliate statements", "Audit log", "Staff accounts"}
    snap(phone_page, "backoffice-players-phone")
    phone_page.get_by_role("link", name="Risk cases").click()
    snap(phone_page, "backoffice-cases-phone")
    phone_page.get_by_role("link", name="Staff accounts").click()
    assert phone_page.locator(f"#staff-{office.staff['phone'].username}").is_visible()
    snap(phone_page, "backoffice-staff-phone")


def test_sign_in_and_the_navigation_work_from_the_keyboard_alone(office: Office, page: Any) -> None:
    who = office.staff["keyboard"]
    page.goto(f"{office.url}/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for text in (who.username, STAFF_PASSWORD, who.code()):
        page.keyboard.press("Tab")
        page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/players$"))
    # from the top of the page: skip link, then the navigation's links, in order
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Players"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="Players", level=1).is_visible()
