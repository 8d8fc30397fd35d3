"""players service, accounts side, against real Postgres and NATS: registration rules, login,
refresh-token rotation and reuse detection, logout, profile without mass assignment, password
change, KYC state machine, and events on NATS."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.testing import ManualClock as Clock
from gameplane.devtools.testing import as_service, as_staff, running, stored_events
from gameplane.kit.auth import verify_player_token
from gameplane.players.app import build_app
from gameplane.players.settings import PlayersSettings

PROBLEM = "https://gameplane.io/problems/"
PASSWORD = "correct horse battery staple"


@dataclass
class Players:
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    nats_url: str

    def svc(self, player_id: uuid.UUID | str | None = None, caller: str = "gateway") -> dict[str, str]:
        return as_service(self.app, caller, uuid.UUID(str(player_id)) if player_id else None)

    def risk(self) -> dict[str, str]:
        """A KYC decision's headers: the back office calling for a staff member of the risk team."""
        return as_staff(self.app, "risk", username="risk-officer")

    def registration(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"email": f"p-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD,
                                "date_of_birth": "1990-04-01", "country": "MT", "currency": "EUR"}
        body.update(overrides)
        return body

    async def register(self, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post("/v1/players/register", json=self.registration(**overrides), headers=self.svc())
        assert r.status_code == 201, r.text
        return r.json()

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/v1/players/login", json={"email": email, "password": password},
                                      headers=self.svc())

    async def refresh(self, token: str) -> httpx.Response:
        return await self.client.post("/v1/players/token/refresh", json={"refresh_token": token}, headers=self.svc())


@pytest.fixture(scope="module")
async def players(module_service_settings, nats_server):
    clock = Clock()
    settings = module_service_settings(PlayersSettings, argon2_time_cost=1, argon2_memory_kib=8192,
                                       argon2_parallelism=1, login_max_failures=3, login_lock_seconds=600)
    app = build_app(settings, clock=clock)
    async with running(app) as client:
        yield Players(app, client, clock, nats_server.url)


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == PROBLEM + slug, body
    return body


# registration ---------------------------------------------------------------------------------


async def test_register_normalises_email_and_exposes_no_secret(players):
    local = uuid.uuid4().hex[:8]
    body = await players.register(email=f"  Alice.{local}@EXAMPLE.com ", marketing_opt_in=True)
    assert body["email"] == f"alice.{local}@example.com"
    assert body["kyc_state"] == "unverified" and body["currency"] == "EUR" and body["country"] == "MT"
    assert not any("password" in k for k in body)


async def test_under_18_refused_and_exactly_18_accepted(players):
    today = players.clock.now.date()
    eighteen = today.replace(year=today.year - 18)
    r = await players.client.post("/v1/players/register", headers=players.svc(),
                                  json=players.registration(date_of_birth=str(eighteen + timedelta(days=1))))
    assert problem(r, 422, "underage")["minimum_age"] == 18
    await players.register(date_of_birth=str(eighteen))


async def test_duplicate_email_refused_with_a_clear_problem(players):
    first = await players.register()
    r = await players.client.post("/v1/players/register", headers=players.svc(),
                                  json=players.registration(email=first["email"].upper()))
    body = problem(r, 409, "email-taken")
    assert body["title"] == "Email already registered"


async def test_concurrent_registrations_of_one_email_create_one_account(players):
    body = players.registration()
    answers = await asyncio.gather(*[
        players.client.post("/v1/players/register", json=body, headers=players.svc()) for _ in range(3)])
    assert sorted(a.status_code for a in answers) == [201, 409, 409]


@pytest.mark.parametrize(("field", "value", "slug"), [
    ("country", "XX", "validation-error"),
    ("currency", "XYZ", "validation-error"),
    ("email", "not-an-email", "validation-error"),
    ("password", "short", "weak-password"),
    ("password", "Password123", "weak-password"),
    ("date_of_birth", "2999-01-01", "invalid-date-of-birth"),
    ("kyc_state", "verified", "validation-error"),
    ("deposit_limits", {"day": 10.5}, "validation-error"),
])
async def test_registration_rules(players, field, value, slug):
    r = await players.client.post("/v1/players/register", json=players.registration(**{field: value}),
                                  headers=players.svc())
    problem(r, 422, slug)


async def test_public_routes_require_a_service_token(players):
    r = await players.client.post("/v1/players/register", json=players.registration())
    problem(r, 401, "unauthenticated")
    wrong_audience = dev_identities().bearer("gateway", "wallet")
    r = await players.client.post("/v1/players/login", json={"email": "a@example.com", "password": "x"},
                                  headers=wrong_audience)
    problem(r, 403, "forbidden")


# login, refresh, logout -----------------------------------------------------------------------


async def test_login_issues_a_short_lived_access_token_with_play_and_kyc(players):
    p = await players.register()
    r = await players.login(p["email"])
    assert r.status_code == 200, r.text
    tokens = r.json()
    claims = verify_player_token(players.app.state.runtime.trusted_keys, tokens["access_token"])
    assert claims["sub"] == p["id"]
    assert claims["play"] is True and claims["kyc"] == "unverified"
    assert claims["exp"] - claims["iat"] == 900 == tokens["expires_in"]
    assert tokens["play"] is True and tokens["refresh_token"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(players):
    p = await players.register()
    wrong = problem(await players.login(p["email"], "not the password at all"), 401, "invalid-credentials")
    unknown = problem(await players.login(f"nobody-{uuid.uuid4().hex}@example.com"), 401, "invalid-credentials")
    assert wrong["title"] == unknown["title"]


async def test_repeated_failures_lock_the_account_for_a_while(players):
    p = await players.register()
    for _ in range(3):
        problem(await players.login(p["email"], "wrong password 123"), 401, "invalid-credentials")
    locked = await players.login(p["email"])  # the right password does not help while locked
    problem(locked, 429, "account-locked")
    assert 0 < int(locked.headers["retry-after"]) <= 600
    players.clock.advance(seconds=601)
    assert (await players.login(p["email"])).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(players):
    p = await players.register()
    first = (await players.login(p["email"])).json()["refresh_token"]
    other_login = (await players.login(p["email"])).json()["refresh_token"]

    r = await players.refresh(first)
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    assert second != first
    third = (await players.refresh(second)).json()["refresh_token"]

    # the first token was already rotated: presenting it again is a theft signal
    problem(await players.refresh(first), 401, "refresh-token-reused")
    # ... and every token of that family, including the newest, is now dead
    problem(await players.refresh(third), 401, "refresh-token-revoked")
    problem(await players.refresh(second), 401, "refresh-token-revoked")
    # another login is another family and keeps working
    assert (await players.refresh(other_login)).status_code == 200


async def test_concurrent_use_of_one_refresh_token_succeeds_once(players):
    p = await players.register()
    token = (await players.login(p["email"])).json()["refresh_token"]
    answers = await asyncio.gather(players.refresh(token), players.refresh(token))
    assert sorted(a.status_code for a in answers) == [200, 401]


async def test_unknown_and_expired_refresh_tokens(players):
    problem(await players.refresh("x" * 43), 401, "invalid-refresh-token")
    p = await players.register()
    token = (await players.login(p["email"])).json()["refresh_token"]
    players.clock.advance(days=31)
    problem(await players.refresh(token), 401, "refresh-token-expired")


async def test_logout_revokes_the_family(players):
    p = await players.register()
    first = (await players.login(p["email"])).json()["refresh_token"]
    second = (await players.refresh(first)).json()["refresh_token"]
    r = await players.client.post("/v1/players/logout", json={"refresh_token": second}, headers=players.svc())
    assert r.status_code == 204
    problem(await players.refresh(second), 401, "refresh-token-revoked")


# profile --------------------------------------------------------------------------------------


async def test_profile_read_and_update(players):
    p = await players.register()
    me = players.svc(p["id"])
    r = await players.client.patch("/v1/players/me", headers=me,
                                   json={"first_name": "Ada", "phone": "+35699123456", "marketing_opt_in": True})
    assert r.status_code == 200, r.text
    body = (await players.client.get("/v1/players/me", headers=me)).json()
    assert (body["first_name"], body["phone"], body["marketing_opt_in"]) == ("Ada", "+35699123456", True)
    assert body["email"] == p["email"]


@pytest.mark.parametrize(("field", "value"), [
    ("email", "evil@example.com"), ("kyc_state", "verified"), ("id", str(uuid.uuid4())),
    ("password_hash", "$argon2id$v=19$x"), ("date_of_birth", "1970-01-01"), ("currency", "USD"),
    ("country", "GB"), ("self_excluded_until", None), ("timeout_until", None), ("balance", 1_000_000),
    ("registered_at", "2020-01-01T00:00:00Z"), ("failed_logins", 0), ("marketing_opt_in", None),
])
async def test_protected_fields_cannot_be_mass_assigned(players, field, value):
    p = await players.register()
    me = players.svc(p["id"])
    r = await players.client.patch("/v1/players/me", headers=me, json={"first_name": "Eve", field: value})
    problem(r, 422, "validation-error")
    after = (await players.client.get("/v1/players/me", headers=me)).json()
    assert after == p  # nothing changed, not even the allowed field of the refused request


async def test_player_routes_need_the_player_id_from_the_gateway(players):
    problem(await players.client.get("/v1/players/me", headers=players.svc()), 401, "unauthenticated")
    problem(await players.client.get("/v1/players/me", headers=players.svc(uuid.uuid4())), 404, "player-not-found")


async def test_password_change_needs_the_old_password_and_ends_all_logins(players):
    p = await players.register()
    me = players.svc(p["id"])
    token = (await players.login(p["email"])).json()["refresh_token"]
    new = "a completely new passphrase"
    r = await players.client.post("/v1/players/me/password", headers=me,
                                  json={"current_password": "guessing wrong", "new_password": new})
    problem(r, 403, "wrong-password")
    r = await players.client.post("/v1/players/me/password", headers=me,
                                  json={"current_password": PASSWORD, "new_password": "tiny"})
    problem(r, 422, "weak-password")
    r = await players.client.post("/v1/players/me/password", headers=me,
                                  json={"current_password": PASSWORD, "new_password": new})
    assert r.status_code == 204
    problem(await players.refresh(token), 401, "refresh-token-revoked")
    problem(await players.login(p["email"]), 401, "invalid-credentials")
    assert (await players.login(p["email"], new)).status_code == 200


async def test_passwords_are_taken_verbatim(players):
    padded = "  spaces around the passphrase  "
    p = await players.register(password=padded)
    problem(await players.login(p["email"], padded.strip()), 401, "invalid-credentials")
    assert (await players.login(p["email"].upper(), padded)).status_code == 200


# KYC ------------------------------------------------------------------------------------------


async def test_kyc_state_machine(players):
    p = await players.register()
    me = players.svc(p["id"])
    decide = f"/internal/players/{p['id']}/kyc/decision"
    doc = {"document_type": "passport", "document_reference": "vendor-123"}

    # nothing submitted yet: a decision has nothing to decide
    problem(await players.client.post(decide, json={"state": "verified"}, headers=players.risk()),
            409, "invalid-kyc-transition")
    r = await players.client.post("/v1/players/me/kyc", json=doc, headers=me)
    assert r.status_code == 202 and r.json()["state"] == "pending"
    problem(await players.client.post("/v1/players/me/kyc", json=doc, headers=me), 409, "invalid-kyc-transition")

    r = await players.client.post(decide, json={"state": "rejected", "reason": "blurry scan"},
                                  headers=players.risk())
    assert r.json()["state"] == "rejected"
    kyc = (await players.client.get("/v1/players/me/kyc", headers=me)).json()
    assert kyc["state"] == "rejected" and kyc["last_reason"] == "blurry scan"

    assert (await players.client.post("/v1/players/me/kyc", json=doc, headers=me)).json()["state"] == "pending"
    r = await players.client.post(decide, json={"state": "verified"}, headers=players.risk())
    assert r.json()["state"] == "verified"
    problem(await players.client.post(decide, json={"state": "rejected"}, headers=players.risk()),
            409, "invalid-kyc-transition")
    problem(await players.client.post("/v1/players/me/kyc", json=doc, headers=me), 409, "invalid-kyc-transition")

    # a player cannot decide their own KYC through a player route or the decision's body
    r = await players.client.post(decide, json={"state": "pending"}, headers=players.risk())
    problem(r, 422, "validation-error")
    elig = (await players.client.get(f"/internal/players/{p['id']}/eligibility",
                                     headers=players.svc(caller="sessions"))).json()
    assert elig["can_withdraw"] is True and elig["kyc_state"] == "verified"
    access = (await players.login(p["email"])).json()["access_token"]
    assert verify_player_token(players.app.state.runtime.trusted_keys, access)["kyc"] == "verified"


async def test_kyc_decision_is_internal_only(players):
    p = await players.register()
    url = f"/internal/players/{p['id']}/kyc/decision"
    problem(await players.client.post(url, json={"state": "verified"}), 401, "unauthenticated")
    foreign = dev_identities().bearer("backoffice", "wallet")
    problem(await players.client.post(url, json={"state": "verified"}, headers=foreign), 403, "forbidden")
    for caller in ("gateway", "payments", "sessions"):  # only the back office decides KYC
        problem(await players.client.post(url, json={"state": "verified"}, headers=players.svc(caller=caller)),
                403, "caller-not-allowed")


# events ---------------------------------------------------------------------------------------


async def test_registration_and_kyc_events_reach_nats(players):
    p = await players.register(affiliate_click_id="clk-42")
    registered = await stored_events(players.nats_url, "gameplane.players.registered", {"player_id": p["id"]}, 1)
    assert len(registered) == 1
    env = registered[0]
    assert env["type"] == "players.registered" and env["producer"] == "players" and env["version"] == 1
    assert env["data"]["email"] == p["email"] and env["data"]["affiliate_click_id"] == "clk-42"
    assert date.fromisoformat(env["data"]["date_of_birth"]) == date(1990, 4, 1)

    await players.client.post("/v1/players/me/kyc", headers=players.svc(p["id"]),
                              json={"document_type": "id_card", "document_reference": "r-1"})
    changed = await stored_events(players.nats_url, "gameplane.players.kyc_changed", {"player_id": p["id"]}, 1)
    assert [(e["data"]["previous"], e["data"]["state"]) for e in changed] == [("unverified", "pending")]


async def test_a_refused_registration_publishes_nothing(players):
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    first = await players.register(email=email)
    r = await players.client.post("/v1/players/register", json=players.registration(email=email),
                                  headers=players.svc())
    assert r.status_code == 409
    events = await stored_events(players.nats_url, "gameplane.players.registered", {"email": email}, 1, timeout=3)
    assert [e["data"]["player_id"] for e in events] == [first["id"]]
