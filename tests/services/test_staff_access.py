"""Staff (back-office) access against real Postgres and NATS: the players service issues staff
tokens after password + TOTP; wallet adjustments and KYC decisions need a staff token with an
accepted role; every staff action leaves an append-only audit record that admins can list.

The roles each route accepts are written out here, from the rule the issue states (adjustments:
finance, admin; KYC decisions: risk, admin; staff accounts and audit logs: admin), not read from
the code under test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest
from fastapi import FastAPI

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.testing import ManualClock, as_service, as_staff, running
from gameplane.kit.auth import issue_player_token, issue_service_token
from gameplane.kit.keys import SigningKey
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.players.staff.accounts import bootstrap_admin
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

PROBLEM = "https://gameplane.io/problems/"
ADMIN, ADMIN_PASSWORD = "root-admin", "admin passphrase for tests"
STAFF_PASSWORD = "staff passphrase for tests"
ALL_ROLES = ("support", "risk", "finance", "admin")
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}


@dataclass
class Platform:
    players: FastAPI
    wallet: FastAPI
    p: httpx.AsyncClient
    w: httpx.AsyncClient
    clock: ManualClock
    players_db: str
    wallet_db: str
    admin_secret: str

    def code(self, secret: str, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.clock.now + timedelta(seconds=30 * steps))

    async def login(self, username: str, password: str, code: str, rid: str | None = None) -> httpx.Response:
        headers = as_service(self.players, "backoffice")
        if rid:
            headers["x-request-id"] = rid
        return await self.p.post("/internal/players/staff/login", headers=headers,
                                 json={"username": username, "password": password, "totp": code})

    async def token(self, username: str, secret: str, password: str = STAFF_PASSWORD) -> str:
        """A real login; the clock moves to a fresh 30 s step first (a step's code is taken once)."""
        self.clock.advance(seconds=30)
        r = await self.login(username, password, self.code(secret))
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def admin_headers(self, app: FastAPI | None = None) -> dict[str, str]:
        token = await self.token(ADMIN, self.admin_secret, ADMIN_PASSWORD)
        return {**as_service(app or self.players, "backoffice"), STAFF_HEADER: token}

    async def enrol(self, roles: list[str], username: str | None = None) -> dict[str, Any]:
        username = username or f"s-{uuid.uuid4().hex[:10]}"
        r = await self.p.post("/internal/players/staff/accounts", headers=await self.admin_headers(),
                              json={"username": username, "roles": roles, "password": STAFF_PASSWORD})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def player_with_pending_kyc(self) -> str:
        body = {"email": f"p-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple",
                "date_of_birth": "1990-04-01", "country": "MT", "currency": "EUR"}
        r = await self.p.post("/v1/players/register", json=body, headers=as_service(self.players))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = await self.p.post("/v1/players/me/kyc", headers=as_service(self.players, "gateway", uuid.UUID(pid)),
                              json={"document_type": "passport", "document_reference": "doc-1"})
        assert r.status_code == 202, r.text
        return str(pid)

    async def funded_player(self, cash: int) -> str:
        pid = str(uuid.uuid4())
        r = await self.w.post("/internal/wallet/deposits", headers=as_service(self.wallet, "payments"),
                              json={"idempotency_key": f"dep-{pid}", "player_id": pid, "currency": "EUR",
                                    "amount": cash})
        assert r.status_code == 200, r.text
        return pid

    async def kyc_state(self, pid: str) -> str:
        r = await self.p.get(f"/internal/players/{pid}", headers=as_service(self.players, "backoffice"))
        return str(r.json()["kyc_state"])

    async def cash(self, pid: str) -> int:
        r = await self.w.get(f"/internal/wallet/players/{pid}/balances/EUR", headers=as_service(self.wallet, "games"))
        return int(r.json()["cash"])

    async def audit(self, service: str, **params: Any) -> dict[str, Any]:
        app, client = (self.players, self.p) if service == "players" else (self.wallet, self.w)
        r = await client.get(f"/internal/{service}/audit", params=params, headers=as_staff(app, "admin"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def platform(module_service_settings: Any):
    clock = ManualClock()
    ps = module_service_settings(PlayersSettings, login_max_failures=3, login_lock_seconds=600, **FAST_HASH)
    ws = module_service_settings(WalletSettings, hold_sweep_seconds=3600)
    players, wallet = build_players(ps, clock=clock), build_wallet(ws)
    async with running(players) as p, running(wallet) as w:
        enrolled = await bootstrap_admin(players.state.players, ADMIN, ADMIN_PASSWORD, force=False)
        yield Platform(players, wallet, p, w, clock, _plain(ps.database_url), _plain(ws.database_url),
                       enrolled.totp_secret)


def _plain(url: str | None) -> str:
    assert url
    return url.replace("postgresql+asyncpg://", "postgresql://")


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"] == PROBLEM + slug, body
    return body


# login ----------------------------------------------------------------------------------------


async def test_login_with_password_and_totp_gives_a_short_lived_staff_token(platform: Platform) -> None:
    rita = await platform.enrol(["risk"])
    platform.clock.advance(seconds=30)
    r = await platform.login(rita["staff"]["username"], STAFF_PASSWORD, platform.code(rita["totp_secret"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "staff" and body["expires_in"] == 600
    assert body["staff"]["roles"] == ["risk"] and body["staff"]["id"] == rita["staff"]["id"]
    me = await platform.p.get("/internal/players/staff/me",
                              headers={**as_service(platform.players, "backoffice"),
                                       STAFF_HEADER: body["access_token"]})
    assert me.status_code == 200 and me.json()["username"] == rita["staff"]["username"]
    assert me.json()["last_login_at"] is not None


async def test_wrong_password_wrong_code_and_unknown_user_get_one_answer(platform: Platform) -> None:
    sam = await platform.enrol(["support"])
    name, secret = sam["staff"]["username"], sam["totp_secret"]
    platform.clock.advance(seconds=30)
    problem(await platform.login(name, "not the password at all", platform.code(secret)), 401,
            "invalid-staff-credentials")
    wrong = f"{(int(platform.code(secret)) + 1) % 1_000_000:06d}"
    problem(await platform.login(name, STAFF_PASSWORD, wrong), 401, "invalid-staff-credentials")
    # a code of five minutes ago is past the one-step drift allowed
    problem(await platform.login(name, STAFF_PASSWORD, platform.code(secret, steps=-10)), 401,
            "invalid-staff-credentials")
    problem(await platform.login("nobody-" + name, STAFF_PASSWORD, platform.code(secret)), 401,
            "invalid-staff-credentials")
    # the audit log, unlike the answer, says which factor failed
    failed = await platform.audit("players", actor=name, action="staff.login_failed")
    assert [rec["after"]["reason"] for rec in reversed(failed["records"])] == [
        "wrong-password", "wrong-totp", "wrong-totp"]
    assert all(rec["target"] == f"staff:{sam['staff']['id']}" for rec in failed["records"])
    unknown = await platform.audit("players", actor="nobody-" + name)
    assert [(rec["actor_id"], rec["after"]) for rec in unknown["records"]] == [
        ("unknown", {"reason": "unknown-username"})]
    # three failures of one account lock it (login_max_failures=3 here): now even the right pair is refused
    assert (await platform.login(name, STAFF_PASSWORD, platform.code(secret))).status_code == 429


async def test_a_code_logs_in_once(platform: Platform) -> None:
    fin = await platform.enrol(["finance"])
    name, secret = fin["staff"]["username"], fin["totp_secret"]
    platform.clock.advance(seconds=30)
    code = platform.code(secret)
    assert (await platform.login(name, STAFF_PASSWORD, code)).status_code == 200
    problem(await platform.login(name, STAFF_PASSWORD, code), 401, "invalid-staff-credentials")
    # the previous step's code is within the drift window but older than the step used: refused too
    problem(await platform.login(name, STAFF_PASSWORD, platform.code(secret, steps=-1)), 401,
            "invalid-staff-credentials")
    # the next step's code is new (negative control: the refusals above were about reuse, not the account)
    platform.clock.advance(seconds=30)
    assert (await platform.login(name, STAFF_PASSWORD, platform.code(secret))).status_code == 200
    failed = await platform.audit("players", actor=name, action="staff.login_failed")
    assert [rec["after"]["reason"] for rec in failed["records"]] == ["replayed-totp", "replayed-totp"]


async def test_concurrent_logins_with_one_code_issue_one_token(platform: Platform) -> None:
    fin = await platform.enrol(["finance"])
    platform.clock.advance(seconds=30)
    code = platform.code(fin["totp_secret"])
    answers = await asyncio.gather(*[platform.login(fin["staff"]["username"], STAFF_PASSWORD, code)
                                     for _ in range(3)])
    assert sorted(a.status_code for a in answers) == [200, 401, 401]


async def test_repeated_failures_lock_the_account_then_it_unlocks(platform: Platform) -> None:
    sup = await platform.enrol(["support"])
    name, secret = sup["staff"]["username"], sup["totp_secret"]
    for _ in range(3):  # login_max_failures=3 in this module
        platform.clock.advance(seconds=30)
        problem(await platform.login(name, STAFF_PASSWORD, "000000" if platform.code(secret) != "000000"
                                     else "111111"), 401, "invalid-staff-credentials")
    platform.clock.advance(seconds=30)
    locked = problem(await platform.login(name, STAFF_PASSWORD, platform.code(secret)), 429, "account-locked")
    assert 0 < locked["retry_after"] <= 600
    platform.clock.advance(seconds=601)
    assert (await platform.login(name, STAFF_PASSWORD, platform.code(secret))).status_code == 200
    reasons = [rec["after"]["reason"] for rec in (await platform.audit(
        "players", actor=name, action="staff.login_failed"))["records"]]
    assert reasons == ["locked", "wrong-totp", "wrong-totp", "wrong-totp"]


async def test_a_deactivated_account_cannot_log_in(platform: Platform) -> None:
    sup = await platform.enrol(["support"])
    r = await platform.p.patch(f"/internal/players/staff/accounts/{sup['staff']['id']}",
                               headers=await platform.admin_headers(), json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    platform.clock.advance(seconds=30)
    problem(await platform.login(sup["staff"]["username"], STAFF_PASSWORD, platform.code(sup["totp_secret"])),
            401, "invalid-staff-credentials")


# enrolment and bootstrap ----------------------------------------------------------------------


async def test_enrolment_shows_the_totp_secret_once(platform: Platform) -> None:
    rita = await platform.enrol(["risk", "support"])
    uri = rita["totp_provisioning_uri"]
    assert uri.startswith("otpauth://totp/gameplane:") and f"secret={rita['totp_secret']}" in uri
    assert pyotp.parse_uri(uri).secret == rita["totp_secret"]
    listed = await platform.p.get("/internal/players/staff/accounts", headers=await platform.admin_headers())
    mine = [a for a in listed.json() if a["id"] == rita["staff"]["id"]]
    assert mine and mine[0]["roles"] == ["risk", "support"]
    assert "totp" not in listed.text and "password" not in listed.text
    taken = await platform.p.post("/internal/players/staff/accounts", headers=await platform.admin_headers(),
                                  json={"username": rita["staff"]["username"].upper(), "roles": ["risk"],
                                        "password": STAFF_PASSWORD})
    problem(taken, 409, "username-taken")


async def test_a_totp_reset_retires_the_old_secret(platform: Platform) -> None:
    sup = await platform.enrol(["support"])
    r = await platform.p.post(f"/internal/players/staff/accounts/{sup['staff']['id']}/totp",
                              headers=await platform.admin_headers())
    assert r.status_code == 200
    fresh = r.json()["totp_secret"]
    assert fresh != sup["totp_secret"]
    platform.clock.advance(seconds=30)
    name = sup["staff"]["username"]
    problem(await platform.login(name, STAFF_PASSWORD, platform.code(sup["totp_secret"])), 401,
            "invalid-staff-credentials")
    assert (await platform.login(name, STAFF_PASSWORD, platform.code(fresh))).status_code == 200


async def test_the_last_active_admin_keeps_the_role(platform: Platform) -> None:
    accounts = (await platform.p.get("/internal/players/staff/accounts", headers=await platform.admin_headers())).json()
    for other in accounts:  # admins other tests enrolled step aside, so ADMIN is the only active one
        if "admin" in other["roles"] and other["active"] and other["username"] != ADMIN:
            r = await platform.p.patch(f"/internal/players/staff/accounts/{other['id']}",
                                       headers=await platform.admin_headers(), json={"active": False})
            assert r.status_code == 200
    me = next(a["id"] for a in accounts if a["username"] == ADMIN)
    problem(await platform.p.patch(f"/internal/players/staff/accounts/{me}", headers=await platform.admin_headers(),
                                   json={"roles": ["support"]}), 409, "last-admin")
    problem(await platform.p.patch(f"/internal/players/staff/accounts/{me}", headers=await platform.admin_headers(),
                                   json={"active": False}), 409, "last-admin")
    # with a second admin, the first may step down (and is restored after, for the other tests)
    second = await platform.enrol(["admin"])
    second_headers = {**as_service(platform.players, "backoffice"),
                      STAFF_HEADER: await platform.token(second["staff"]["username"], second["totp_secret"])}
    r = await platform.p.patch(f"/internal/players/staff/accounts/{me}", headers=second_headers,
                               json={"roles": ["support"]})
    assert r.status_code == 200 and r.json()["roles"] == ["support"]
    r = await platform.p.patch(f"/internal/players/staff/accounts/{me}", headers=second_headers,
                               json={"roles": ["admin"]})
    assert r.status_code == 200
    r = await platform.p.patch(f"/internal/players/staff/accounts/{second['staff']['id']}",
                               headers=await platform.admin_headers(), json={"active": False})
    assert r.status_code == 200
    records = (await platform.audit("players", target=f"staff:{me}", action="staff.updated"))["records"]
    assert [(rec["actor"], rec["before"]["roles"], rec["after"]["roles"]) for rec in records[:2]] == [
        (second["staff"]["username"], ["support"], ["admin"]),
        (second["staff"]["username"], ["admin"], ["support"])]


async def test_create_admin_command_bootstraps_once(service_settings: Any) -> None:
    settings = service_settings(PlayersSettings, **FAST_HASH)
    # Writing an account signs nothing: the command runs without players' key (or anyone's).
    env = {**{k: v for k, v in os.environ.items() if not k.endswith(("_SERVICE_KEY", "_PUBLIC_KEYS"))},
           "GP_PLAYERS_DATABASE_URL": str(settings.database_url),
           **{f"GP_PLAYERS_{k.upper()}": str(v) for k, v in FAST_HASH.items()}}

    def create_admin(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gameplane.players.staff", "create-admin", "--username",
                               "first-admin", "--password-stdin", *extra], input=ADMIN_PASSWORD + "\n", env=env,
                              capture_output=True, text=True, timeout=120)

    clock = ManualClock()
    app = build_players(settings, clock=clock)
    async with running(app) as client:
        async def login(code: str) -> httpx.Response:
            return await client.post("/internal/players/staff/login", headers=as_service(app, "backoffice"),
                                     json={"username": "first-admin", "password": ADMIN_PASSWORD, "totp": code})

        # no default account: before the bootstrap nobody logs in
        problem(await login("123456"), 401, "invalid-staff-credentials")
        done = await asyncio.to_thread(create_admin)
        assert done.returncode == 0, done.stderr
        secret = next(line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                      if line.startswith("TOTP secret"))
        r = await login(pyotp.TOTP(secret).at(clock.now))
        assert r.status_code == 200, r.text
        assert r.json()["staff"]["roles"] == ["admin"]
        again = await asyncio.to_thread(create_admin)
        assert again.returncode == 1 and "active admin exists" in again.stderr
        created = (await client.get("/internal/players/audit", headers=as_staff(app, "admin"),
                                    params={"action": "staff.created"})).json()["records"]
        assert [(rec["actor_id"], rec["actor"], rec["after"]) for rec in created] == [
            ("cli", "cli:create-admin", {"username": "first-admin", "roles": ["admin"], "active": True})]


# role checks, route by route ------------------------------------------------------------------


async def _adjust(platform: Platform, headers: dict[str, str], pid: str, amount: int = 100,
                  rid: str | None = None) -> httpx.Response:
    if rid:
        headers = {**headers, "x-request-id": rid}
    return await platform.w.post("/internal/wallet/adjustments", headers=headers, json={
        "idempotency_key": f"adj-{uuid.uuid4()}", "player_id": pid, "currency": "EUR", "amount": amount,
        "reason": "goodwill"})


async def _decide(platform: Platform, headers: dict[str, str], pid: str, state: str = "verified") -> httpx.Response:
    return await platform.p.post(f"/internal/players/{pid}/kyc/decision", headers=headers, json={"state": state})


async def test_adjustments_accept_finance_and_admin_only(platform: Platform) -> None:
    pid = await platform.funded_player(1000)
    for role in ("support", "risk"):
        body = problem(await _adjust(platform, as_staff(platform.wallet, role), pid), 403, "staff-role-forbidden")
        assert body["accepted_roles"] == ["finance", "admin"] and body["roles"] == [role]
    assert await platform.cash(pid) == 1000
    for role in ("finance", "admin"):
        assert (await _adjust(platform, as_staff(platform.wallet, role), pid)).status_code == 200
    assert await platform.cash(pid) == 1200


async def test_kyc_decisions_accept_risk_and_admin_only(platform: Platform) -> None:
    pid = await platform.player_with_pending_kyc()
    for role in ("support", "finance"):
        body = problem(await _decide(platform, as_staff(platform.players, role), pid), 403, "staff-role-forbidden")
        assert body["accepted_roles"] == ["risk", "admin"]
    assert await platform.kyc_state(pid) == "pending"
    assert (await _decide(platform, as_staff(platform.players, "risk"), pid, "rejected")).status_code == 200
    pid = await platform.player_with_pending_kyc()
    assert (await _decide(platform, as_staff(platform.players, "admin"), pid)).status_code == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/internal/players/staff/accounts"),
    ("POST", "/internal/players/staff/accounts"),
    ("PATCH", "/internal/players/staff/accounts/00000000-0000-0000-0000-000000000001"),
    ("POST", "/internal/players/staff/accounts/00000000-0000-0000-0000-000000000001/totp"),
    ("GET", "/internal/players/audit"),
    ("GET", "/internal/wallet/audit"),
])
async def test_staff_administration_and_audit_logs_accept_admin_only(platform: Platform, method: str,
                                                                     path: str) -> None:
    app, client = (platform.wallet, platform.w) if "/wallet/" in path else (platform.players, platform.p)
    body = {"username": f"x-{uuid.uuid4().hex[:8]}", "roles": ["support"], "password": STAFF_PASSWORD} \
        if method == "POST" and path.endswith("/accounts") else {"roles": ["support"]} if method == "PATCH" else None
    for role in ("support", "risk", "finance"):
        r = await client.request(method, path, headers=as_staff(app, role), json=body)
        assert problem(r, 403, "staff-role-forbidden")["accepted_roles"] == ["admin"]
    r = await client.request(method, path, headers=as_staff(app, "admin"), json=body)
    assert r.status_code in (200, 201, 404), r.text  # 404: the made-up account id; the role was accepted
    if r.status_code == 404:
        problem(r, 404, "staff-not-found")


async def test_every_role_reads_its_own_account(platform: Platform) -> None:
    for role in ALL_ROLES:
        member = await platform.enrol([role])
        token = await platform.token(member["staff"]["username"], member["totp_secret"])
        r = await platform.p.get("/internal/players/staff/me",
                                 headers={**as_service(platform.players, "backoffice"), STAFF_HEADER: token})
        assert r.status_code == 200 and r.json()["roles"] == [role]


# who may not call at all ----------------------------------------------------------------------


def _refusals(app: FastAPI) -> dict[str, tuple[dict[str, str], int, str]]:
    """Header sets that must not reach a back-office action, with the answer each must get."""
    ids = dev_identities()
    key = ids.key("players")  # what signs real staff (and player) tokens
    staff_id = uuid.uuid4()
    expired = issue_staff_token(key, staff_id, "finance-admin", ["finance", "admin"], ttl=-60)
    # Signed by a key nobody trusts, and by a key the service does trust, but as wallet's: a staff
    # token is players' to sign alone.
    forged = issue_staff_token(SigningKey.generate(), staff_id, "x", ["finance", "admin"])
    by_wallet = issue_staff_token(ids.key("wallet"), staff_id, "x", ["finance", "admin"])
    player = issue_player_token(key, uuid.uuid4())
    service = issue_service_token(ids.key("backoffice"), "backoffice", app.state.runtime.name)
    backoffice = as_service(app, "backoffice")
    return {
        "service token only": (backoffice, 401, "staff-unauthenticated"),
        "player token as staff token": ({**backoffice, STAFF_HEADER: player}, 401, "staff-unauthenticated"),
        "service token as staff token": ({**backoffice, STAFF_HEADER: service}, 401, "staff-unauthenticated"),
        "staff token signed with another key": ({**backoffice, STAFF_HEADER: forged}, 401, "staff-unauthenticated"),
        "staff token signed with wallet's key": (
            {**backoffice, STAFF_HEADER: by_wallet}, 401, "staff-unauthenticated"),
        "expired staff token": ({**backoffice, STAFF_HEADER: expired}, 401, "staff-unauthenticated"),
        "garbage staff token": ({**backoffice, STAFF_HEADER: "not.a.jwt"}, 401, "staff-unauthenticated"),
        "staff token without a service token": (
            {STAFF_HEADER: as_staff(app, "admin")[STAFF_HEADER]}, 401, "unauthenticated"),
        "staff token in place of the service token": (
            {"authorization": "Bearer " + as_staff(app, "admin")[STAFF_HEADER]}, 401, "unauthenticated"),
    }


async def test_adjustments_refuse_every_caller_without_a_valid_staff_token(platform: Platform) -> None:
    pid = await platform.funded_player(500)
    for name, (headers, status, slug) in _refusals(platform.wallet).items():
        r = await _adjust(platform, headers, pid)
        assert r.status_code == status, (name, r.text)
        problem(r, status, slug)
    assert await platform.cash(pid) == 500  # nothing moved
    # negative control: the same request with a staff token of finance moves the money
    assert (await _adjust(platform, as_staff(platform.wallet, "finance"), pid)).status_code == 200
    assert await platform.cash(pid) == 600


async def test_kyc_decisions_refuse_every_caller_without_a_valid_staff_token(platform: Platform) -> None:
    pid = await platform.player_with_pending_kyc()
    for name, (headers, status, slug) in _refusals(platform.players).items():
        r = await _decide(platform, headers, pid)
        assert r.status_code == status, (name, r.text)
        problem(r, status, slug)
    assert await platform.kyc_state(pid) == "pending"
    assert (await _decide(platform, as_staff(platform.players, "risk"), pid)).status_code == 200
    assert await platform.kyc_state(pid) == "verified"


async def test_a_token_from_a_real_login_works_across_services(platform: Platform) -> None:
    fin = await platform.enrol(["finance"])
    token = await platform.token(fin["staff"]["username"], fin["totp_secret"])
    pid = await platform.funded_player(10)
    r = await _adjust(platform, {**as_service(platform.wallet, "backoffice"), STAFF_HEADER: token}, pid)
    assert r.status_code == 200, r.text
    # the same person cannot decide KYC: finance is not among that route's roles
    kyc = await platform.player_with_pending_kyc()
    problem(await _decide(platform, {**as_service(platform.players, "backoffice"), STAFF_HEADER: token}, kyc),
            403, "staff-role-forbidden")


# audit ----------------------------------------------------------------------------------------


async def test_an_adjustment_is_audited_with_balances_before_and_after(platform: Platform) -> None:
    pid = await platform.funded_player(700)
    staff_id = uuid.uuid4()
    headers = as_staff(platform.wallet, "finance", username="fiona", staff_id=staff_id)
    rid = f"rid-{uuid.uuid4().hex[:8]}"
    r = await _adjust(platform, headers, pid, amount=-200, rid=rid)
    assert r.status_code == 200, r.text
    records = (await platform.audit("wallet", target=f"player:{pid}"))["records"]
    assert len(records) == 1
    rec = records[0]
    assert (rec["actor_id"], rec["actor"], rec["roles"], rec["action"]) == (str(staff_id), "fiona", ["finance"],
                                                                            "wallet.adjustment")
    assert rec["before"] == {"balance": {"currency": "EUR", "cash": 700, "bonus": 0, "withdrawal_hold": 0}}
    assert rec["after"]["balance"] == {"currency": "EUR", "cash": 500, "bonus": 0, "withdrawal_hold": 0}
    assert rec["after"]["amount"] == -200 and rec["after"]["transaction_id"] == r.json()["transaction_id"]
    assert rec["request_id"] == rid
    assert abs(datetime.fromisoformat(rec["at"]) - datetime.now(UTC)) < timedelta(minutes=5)


async def test_refused_and_replayed_adjustments_leave_no_record(platform: Platform) -> None:
    pid = await platform.funded_player(100)
    fin = as_staff(platform.wallet, "finance")
    problem(await _adjust(platform, fin, pid, amount=-101), 402, "insufficient-funds")
    body = {"idempotency_key": f"adj-{uuid.uuid4()}", "player_id": pid, "currency": "EUR", "amount": 5,
            "reason": "goodwill"}
    first = await platform.w.post("/internal/wallet/adjustments", headers=fin, json=body)
    again = await platform.w.post("/internal/wallet/adjustments", headers=fin, json=body)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    records = (await platform.audit("wallet", target=f"player:{pid}"))["records"]
    assert [rec["after"]["amount"] for rec in records] == [5]


async def test_a_kyc_decision_is_audited_with_the_state_before_and_after(platform: Platform) -> None:
    pid = await platform.player_with_pending_kyc()
    r = await platform.p.post(f"/internal/players/{pid}/kyc/decision",
                              headers=as_staff(platform.players, "risk", username="rick"),
                              json={"state": "rejected", "reason": "document expired"})
    assert r.status_code == 200, r.text
    records = (await platform.audit("players", target=f"player:{pid}"))["records"]
    assert [(rec["actor"], rec["action"], rec["before"], rec["after"]) for rec in records] == [
        ("rick", "players.kyc_decision", {"kyc_state": "pending"},
         {"kyc_state": "rejected", "reason": "document expired"})]
    # an invalid transition changes nothing and records nothing
    problem(await _decide(platform, as_staff(platform.players, "risk"), pid, "verified"), 409,
            "invalid-kyc-transition")
    assert len((await platform.audit("players", target=f"player:{pid}"))["records"]) == 1


async def test_logins_and_enrolments_are_audited(platform: Platform) -> None:
    member = await platform.enrol(["support"])
    sid = member["staff"]["id"]
    await platform.token(member["staff"]["username"], member["totp_secret"])
    records = (await platform.audit("players", target=f"staff:{sid}"))["records"]
    assert [(rec["action"], rec["actor"]) for rec in records] == [
        ("staff.login", member["staff"]["username"]), ("staff.created", ADMIN)]
    assert records[1]["after"] == {"username": member["staff"]["username"], "roles": ["support"], "active": True}
    assert "secret" not in str(records) and "hash" not in str(records)


@pytest.mark.parametrize("service", ["players", "wallet"])
async def test_the_audit_table_refuses_update_delete_and_truncate(platform: Platform, service: str) -> None:
    if service == "wallet":
        await _adjust(platform, as_staff(platform.wallet, "admin"), await platform.funded_player(1))
    dsn = platform.players_db if service == "players" else platform.wallet_db
    conn = await asyncpg.connect(dsn)
    try:
        first = await conn.fetchrow("SELECT id, actor FROM audit_log ORDER BY id LIMIT 1")
        assert first is not None
        for sql in ("UPDATE audit_log SET actor = 'someone else' WHERE id = $1",
                    "DELETE FROM audit_log WHERE id = $1"):
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.execute(sql, first["id"])
            assert refused.value.sqlstate == "GPA01" and "append-only" in str(refused.value)
        with pytest.raises(asyncpg.PostgresError) as refused:
            await conn.execute("TRUNCATE audit_log")
        assert refused.value.sqlstate == "GPA01"
        assert await conn.fetchval("SELECT actor FROM audit_log WHERE id = $1", first["id"]) == first["actor"]
        # negative control: appending is what the table is for, and it still works
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
        await conn.execute("INSERT INTO audit_log (at, actor_id, actor, roles, action) "
                           "VALUES (now(), 'test', 'test', '[]', 'test.append')")
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == before + 1
    finally:
        await conn.close()


async def test_audit_listing_filters_and_pages(platform: Platform) -> None:
    pid = await platform.player_with_pending_kyc()
    # two decisions on one player by two people, ten minutes apart on the manual clock
    start = platform.clock.now
    members = [await platform.enrol(["risk"]) for _ in range(2)]
    tokens = [await platform.token(m["staff"]["username"], m["totp_secret"]) for m in members]
    stamps = []
    for i, state in enumerate(["rejected", None, "verified"]):
        platform.clock.advance(minutes=10)
        stamps.append(platform.clock.now)
        if state is None:  # resubmit documents as the player
            r = await platform.p.post("/v1/players/me/kyc", headers=as_service(platform.players, "gateway",
                                                                                 uuid.UUID(pid)),
                                      json={"document_type": "passport", "document_reference": f"doc-{i}"})
            assert r.status_code == 202
            continue
        headers = {**as_service(platform.players, "backoffice"), STAFF_HEADER: tokens[i // 2]}
        assert (await _decide(platform, headers, pid, state)).status_code == 200
    target = f"player:{pid}"
    everything = (await platform.audit("players", target=target))["records"]
    assert [(rec["actor"], rec["after"]["kyc_state"]) for rec in everything] == [
        (members[1]["staff"]["username"], "verified"), (members[0]["staff"]["username"], "rejected")]
    by_actor = (await platform.audit("players", actor=members[0]["staff"]["username"]))["records"]
    assert [rec["action"] for rec in by_actor] == ["players.kyc_decision", "staff.login"]
    window = (await platform.audit("players", target=target, since=stamps[1].isoformat(),
                                   until=(stamps[2] + timedelta(seconds=1)).isoformat()))["records"]
    assert [rec["after"]["kyc_state"] for rec in window] == ["verified"]
    # `until` is exclusive: ending the window at the decision's own time leaves it out
    assert (await platform.audit("players", target=target, since=stamps[1].isoformat(),
                                 until=stamps[2].isoformat()))["records"] == []
    assert (await platform.audit("players", target=target, until=start.isoformat()))["records"] == []
    # pages of two over everything since the start: together exactly the full list, newest first
    full = (await platform.audit("players", since=start.isoformat(), limit=500))["records"]
    assert len(full) >= 6  # 2 enrolments, 2 logins, 2 decisions (and the admin's logins)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"since": start.isoformat(), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await platform.audit("players", **params)
        assert len(page["records"]) <= 2
        seen += [rec["id"] for rec in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [rec["id"] for rec in full] == sorted(seen, reverse=True)


async def test_audit_listing_refuses_bad_filters_with_a_problem(platform: Platform) -> None:
    for params in ({"actor": "a\x00b"}, {"since": "2026-01-01T00:00:00"}, {"cursor": str(2**63)},
                   {"limit": "0"}, {"limit": "501"}):
        r = await platform.p.get("/internal/players/audit", params=params, headers=as_staff(platform.players, "admin"))
        problem(r, 422, "validation-error")
