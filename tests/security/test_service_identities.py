"""Named service identities, attacked: every route of every service refuses every caller it does
not name, whoever signs; a token that claims another service's name is refused; the gateway's
identity opens no internal route.

The table below is the specification, written here by hand from who really calls what (the
services' HTTP clients) — not read from the code under test. A route the table does not know
fails the test, so a new route cannot ship without saying who may call it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from gameplane.devtools.identities import NAMES, dev_identities
from gameplane.kit.auth import PLAYER_HEADER, issue_service_token
from gameplane.kit.keys import SigningKey
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

PROBLEMS = "https://gameplane.io/problems/"

# Who may call what. "gateway" on /v1 routes: the gateway vouching for a player (or, for
# register/login, for an anonymous visitor).
CALLERS: dict[str, dict[tuple[str, str], set[str]]] = {
    "wallet": {
        ("POST", "/internal/wallet/bets"): {"games"},
        ("POST", "/internal/wallet/wins"): {"games"},
        ("POST", "/internal/wallet/rollbacks"): {"games"},
        ("POST", "/internal/wallet/deposits"): {"payments"},
        ("POST", "/internal/wallet/chargebacks"): {"payments"},
        ("POST", "/internal/wallet/fees"): {"payments"},
        ("GET", "/internal/wallet/players/{player_id}/deposit-allowance/{currency}"): {"payments"},
        ("GET", "/internal/wallet/movements"): {"payments"},
        ("POST", "/internal/wallet/withdrawals"): {"payments"},
        ("POST", "/internal/wallet/withdrawals/expire"): {"payments"},
        ("POST", "/internal/wallet/withdrawals/{hold_id}/post"): {"payments"},
        ("POST", "/internal/wallet/withdrawals/{hold_id}/void"): {"payments"},
        ("POST", "/internal/wallet/bonuses"): {"bonus"},
        ("POST", "/internal/wallet/bonuses/{grant_id}/convert"): {"bonus"},
        ("POST", "/internal/wallet/bonuses/{grant_id}/forfeit"): {"bonus"},
        ("POST", "/internal/wallet/bonuses/{grant_id}/free-spin-wins"): {"games"},
        ("GET", "/internal/wallet/players/{player_id}/grants/{currency}"): {"bonus"},
        ("POST", "/internal/wallet/adjustments"): {"backoffice"},
        ("GET", "/internal/wallet/players/{player_id}/balances/{currency}"): {"games", "payments", "backoffice"},
        ("GET", "/internal/wallet/players/{player_id}/balances"): {"backoffice"},
        ("GET", "/internal/wallet/players/{player_id}/transactions"): {"backoffice"},
        ("GET", "/internal/wallet/transactions/{tx_id}"): {"backoffice"},
        ("GET", "/internal/wallet/reconciliation"): {"backoffice"},
        ("GET", "/internal/wallet/audit"): {"backoffice"},
        ("GET", "/v1/wallet/balances"): {"gateway"},
        ("GET", "/v1/wallet/transactions"): {"gateway"},
        ("GET", "/v1/wallet/transactions/{tx_id}"): {"gateway"},
    },
    "players": {
        ("POST", "/v1/players/register"): {"gateway"},
        ("POST", "/v1/players/login"): {"gateway"},
        ("POST", "/v1/players/token/refresh"): {"gateway"},
        ("POST", "/v1/players/logout"): {"gateway"},
        ("GET", "/v1/players/me"): {"gateway"},
        ("PATCH", "/v1/players/me"): {"gateway"},
        ("POST", "/v1/players/me/password"): {"gateway"},
        ("GET", "/v1/players/me/kyc"): {"gateway"},
        ("POST", "/v1/players/me/kyc"): {"gateway"},
        ("GET", "/v1/players/me/protection"): {"gateway"},
        ("PUT", "/v1/players/me/limits"): {"gateway"},
        ("DELETE", "/v1/players/me/limits/{kind}/{period}"): {"gateway"},
        ("POST", "/v1/players/me/timeout"): {"gateway"},
        ("POST", "/v1/players/me/self-exclusion"): {"gateway"},
        ("DELETE", "/v1/players/me/timeout"): {"gateway"},
        ("DELETE", "/v1/players/me/self-exclusion"): {"gateway"},
        ("PUT", "/v1/players/me/reality-check"): {"gateway"},
        ("GET", "/internal/players/{player_id}"): {"sessions", "payments", "backoffice"},
        ("GET", "/internal/players/{player_id}/eligibility"): {"sessions"},
        ("GET", "/internal/players"): {"backoffice"},  # the back office's player search
        ("GET", "/internal/players/{player_id}/notes"): {"backoffice"},
        ("POST", "/internal/players/{player_id}/notes"): {"backoffice"},
        ("GET", "/internal/players/{player_id}/protection"): {"backoffice"},
        ("POST", "/internal/players/{player_id}/kyc/decision"): {"backoffice"},
        # the back office: staff log in, read themselves, administer accounts, read the audit log
        ("POST", "/internal/players/staff/login"): {"backoffice"},
        ("GET", "/internal/players/staff/me"): {"backoffice"},
        ("GET", "/internal/players/staff/accounts"): {"backoffice"},
        ("POST", "/internal/players/staff/accounts"): {"backoffice"},
        ("PATCH", "/internal/players/staff/accounts/{staff_id}"): {"backoffice"},
        ("POST", "/internal/players/staff/accounts/{staff_id}/totp"): {"backoffice"},
        ("GET", "/internal/players/audit"): {"backoffice"},
    },
    "games": {
        ("GET", "/internal/games/providers"): {"backoffice"},
        ("GET", "/internal/games/{game_id}"): {"sessions", "bonus", "analytics"},
        ("PUT", "/internal/games/{game_id}"): {"backoffice"},
        ("POST", "/internal/games/free-spins"): {"bonus"},
        ("GET", "/internal/games/free-spins/{award_id}"): {"bonus", "backoffice"},
    },
    "sessions": {
        ("POST", "/v1/sessions"): {"gateway"},
        ("GET", "/v1/sessions"): {"gateway"},
        ("GET", "/v1/sessions/{session_id}"): {"gateway"},
        ("POST", "/v1/sessions/{session_id}/end"): {"gateway"},
        ("GET", "/internal/sessions/{token}"): {"games"},
    },
    "risk": {
        ("POST", "/internal/risk/decisions"): {"payments"},
        # the back office: review cases, a player's features, rule set versions, the audit log
        ("GET", "/internal/risk/cases"): {"backoffice"},
        ("GET", "/internal/risk/cases/{case_id}"): {"backoffice"},
        ("POST", "/internal/risk/cases/{case_id}/assign"): {"backoffice"},
        ("POST", "/internal/risk/cases/{case_id}/decision"): {"backoffice"},
        ("GET", "/internal/risk/players/{player_id}"): {"backoffice"},
        ("GET", "/internal/risk/rule-sets"): {"backoffice"},
        ("POST", "/internal/risk/rule-sets"): {"backoffice"},
        ("GET", "/internal/risk/rule-sets/{version}"): {"backoffice"},
        ("GET", "/internal/risk/audit"): {"backoffice"},
    },
    "payments": {
        # players, through the gateway
        ("POST", "/v1/payments/deposits"): {"gateway"},
        ("POST", "/v1/payments/withdrawals"): {"gateway"},
        ("POST", "/v1/payments/withdrawals/{payment_id}/cancel"): {"gateway"},
        ("GET", "/v1/payments"): {"gateway"},
        # the back office: held withdrawals, reconciliation, refused webhooks, the audit log
        ("GET", "/internal/payments/withdrawals"): {"backoffice"},
        ("POST", "/internal/payments/withdrawals/{payment_id}/approve"): {"backoffice"},
        ("POST", "/internal/payments/withdrawals/{payment_id}/reject"): {"backoffice"},
        ("POST", "/internal/payments/reconciliation"): {"backoffice"},
        ("GET", "/internal/payments/reconciliation/mismatches"): {"backoffice"},
        ("GET", "/internal/payments/webhook-rejections"): {"backoffice"},
        ("GET", "/internal/payments/audit"): {"backoffice"},
    },
    "affiliates": {
        # a click on a tracking link, and the affiliate's own API (its API key on top), through the gateway
        ("GET", "/v1/affiliates/track/{code}"): {"gateway"},
        ("GET", "/v1/affiliates/me"): {"gateway"},
        ("GET", "/v1/affiliates/me/links"): {"gateway"},
        ("GET", "/v1/affiliates/me/players"): {"gateway"},
        ("GET", "/v1/affiliates/me/statements/{month}"): {"gateway"},
        # the back office: affiliates, deals, links, statements, closing a month, the audit log
        ("POST", "/internal/affiliates/affiliates"): {"backoffice"},
        ("GET", "/internal/affiliates/affiliates"): {"backoffice"},
        ("GET", "/internal/affiliates/affiliates/{affiliate_id}"): {"backoffice"},
        ("PUT", "/internal/affiliates/affiliates/{affiliate_id}/deal"): {"backoffice"},
        ("PUT", "/internal/affiliates/affiliates/{affiliate_id}/active"): {"backoffice"},
        ("POST", "/internal/affiliates/affiliates/{affiliate_id}/links"): {"backoffice"},
        ("GET", "/internal/affiliates/affiliates/{affiliate_id}/links"): {"backoffice"},
        ("GET", "/internal/affiliates/affiliates/{affiliate_id}/statements/{month}"): {"backoffice"},
        ("POST", "/internal/affiliates/statements/{month}/close"): {"backoffice"},
        ("GET", "/internal/affiliates/players/{player_id}"): {"backoffice"},
        ("GET", "/internal/affiliates/postbacks"): {"backoffice"},
        ("GET", "/internal/affiliates/audit"): {"backoffice"},
    },
    "analytics": {
        # the back office's KPI reports (finance, admin, support staff)
        ("GET", "/internal/analytics/kpis"): {"backoffice"},
        ("GET", "/internal/analytics/rtp"): {"backoffice"},
    },
}

# Routes with no service token at all, and why.
OPEN: dict[str, set[tuple[str, str]]] = {
    "players": {("GET", "/.well-known/jwks.json")},  # public keys, public by nature
    "games": {("GET", "/v1/games"), ("GET", "/v1/games/{game_id}"),  # the public catalogue
              # signed by the provider, not a service: each operation of both dialects, and the rest
              ("POST", "/providers/{provider}/authenticate"), ("POST", "/providers/{provider}/balance"),
              ("POST", "/providers/{provider}/bet"), ("POST", "/providers/{provider}/win"),
              ("POST", "/providers/{provider}/rollback"),
              ("POST", "/providers/{provider}/user/info"), ("POST", "/providers/{provider}/user/balance"),
              ("POST", "/providers/{provider}/transaction/bet"), ("POST", "/providers/{provider}/transaction/win"),
              ("POST", "/providers/{provider}/transaction/rollback"),
              ("POST", "/providers/{provider}/{operation:path}")},
    "wallet": set(),
    "sessions": set(),
    "risk": set(),
    "affiliates": set(),
    # signed by the PSP with its webhook secret, not by a service (it holds no service identity)
    "payments": {("POST", "/webhooks/payments/{psp}")},
    "analytics": set(),
}
# The kit's probes and documents, on every service.
KIT = {("GET", "/livez"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
       ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}

SAMPLE = {"player_id": str(uuid.uuid4()), "currency": "EUR", "hold_id": str(uuid.uuid4()), "grant_id": "g-1",
          "tx_id": str(uuid.uuid4()), "kind": "timeout", "period": "day", "game_id": "fruit-fives",
          "session_id": str(uuid.uuid4()), "token": "no-such-token", "provider": "rgs", "operation": "balance",
          "staff_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "version": "1",
          "payment_id": str(uuid.uuid4()), "psp": "simpsp", "award_id": "aw-1", "code": "no-such-link",
          "month": "2026-11", "affiliate_id": str(uuid.uuid4())}


def routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, full path) the app serves, included routers flattened."""
    try:  # FastAPI >= 0.16x keeps included routers as such; this walks them with their prefixes
        from fastapi.routing import iter_route_contexts
        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = [r for r in app.routes if isinstance(r, Route)]
    found = set()
    for route in routes:
        found |= {(m, route.path) for m in (route.methods or ()) if m != "HEAD"}
    return found


def concrete(template: str) -> str:
    return re.sub(r"{(\w+)(?::path)?}", lambda m: SAMPLE[m.group(1)], template)


async def call(client: httpx.AsyncClient, method: str, template: str, headers: dict[str, str]) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await client.request(method, concrete(template), headers=headers, **body)


def as_caller(caller: str, audience: str, *, key: SigningKey | None = None) -> dict[str, str]:
    """A call from `caller` for a player, with an admin's staff token as well: back-office routes
    then get past the staff check when the caller is named, and a valid staff token opens no route
    to a caller the route does not name."""
    ids = dev_identities()
    token = issue_service_token(key or ids.key(caller), caller, audience)
    staff = issue_staff_token(ids.key("players"), uuid.uuid4(), "ops", ["admin"])
    return {"authorization": f"Bearer {token}", PLAYER_HEADER: SAMPLE["player_id"], STAFF_HEADER: staff}


def slug(r: httpx.Response) -> str:
    if not r.headers.get("content-type", "").startswith("application/problem+json"):
        return ""
    return str(r.json().get("type", "")).removeprefix(PROBLEMS)


@pytest.mark.parametrize("service", sorted(CALLERS))
async def test_every_route_is_declared_in_the_table(services: dict[str, Any], service: str) -> None:
    app, _ = services[service]
    declared = set(CALLERS[service]) | OPEN[service] | KIT
    undeclared = routes_of(app) - declared
    assert not undeclared, f"routes of {service} with no caller rule in this test (add them, with their callers)"
    missing = declared - routes_of(app) - KIT
    assert not missing, f"routes in the table that {service} no longer has: {missing}"


@pytest.mark.parametrize("service", sorted(CALLERS))
async def test_each_route_refuses_every_caller_it_does_not_name(services: dict[str, Any], service: str) -> None:
    _, client = services[service]
    failures = []
    for (method, path), allowed in CALLERS[service].items():
        for caller in NAMES:
            r = await call(client, method, path, as_caller(caller, service))
            if caller in allowed:
                # negative control: the same request from a named caller gets past the identity check
                if r.status_code in (401, 403) and slug(r) in ("caller-not-allowed", "unauthenticated", "forbidden"):
                    failures.append(f"{caller} refused on {method} {path}: {r.status_code} {r.text[:200]}")
            elif r.status_code != 403 or slug(r) != "caller-not-allowed":
                failures.append(f"{caller} not refused on {method} {path}: {r.status_code} {r.text[:200]}")
            elif caller not in r.json()["detail"] or f"{method} {path}" not in r.json()["detail"]:
                failures.append(f"the refusal does not name the rule: {r.json()}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", sorted(CALLERS))
async def test_a_token_signed_with_another_services_key_is_refused(services: dict[str, Any], service: str) -> None:
    _, client = services[service]
    ids = dev_identities()
    failures = []
    for (method, path), allowed in CALLERS[service].items():
        for claimed in sorted(allowed):
            for signer in NAMES:
                if signer == claimed:
                    continue
                r = await call(client, method, path, as_caller(claimed, service, key=ids.key(signer)))
                if r.status_code != 401 or slug(r) != "unauthenticated":
                    failures.append(f"{signer}'s key as {claimed} on {method} {path}: {r.status_code}")
            stranger = await call(client, method, path, as_caller(claimed, service, key=SigningKey.generate()))
            if stranger.status_code != 401:
                failures.append(f"an unknown key as {claimed} on {method} {path}: {stranger.status_code}")
    assert not failures, "\n".join(failures)


async def test_the_gateway_identity_reaches_no_internal_route(services: dict[str, Any]) -> None:
    internal = [(s, m, p) for s, table in CALLERS.items() for (m, p) in table if p.startswith("/internal/")]
    assert len(internal) >= 20  # the check below is not vacuous
    for service, method, path in internal:
        r = await call(services[service][1], method, path, as_caller("gateway", service))
        assert r.status_code == 403 and slug(r) == "caller-not-allowed", (service, method, path, r.text)


async def test_the_fast_path_applies_the_same_rule(services: dict[str, Any]) -> None:
    """The wallet's bets and wins are answered ahead of FastAPI: same refusals, same bodies."""
    app, client = services["wallet"]
    assert app.front is not None  # the fast routes are installed: the requests below meet them
    for path in ("/internal/wallet/bets", "/internal/wallet/wins"):
        refused = await call(client, "POST", path, as_caller("payments", "wallet"))
        assert refused.status_code == 403 and slug(refused) == "caller-not-allowed"
        assert refused.json()["allowed"] == ["games"] and refused.json()["caller"] == "payments"
        forged = await call(client, "POST", path, as_caller("games", "wallet", key=dev_identities().key("sessions")))
        assert forged.status_code == 401
        accepted = await call(client, "POST", path, as_caller("games", "wallet"))
        assert accepted.status_code == 422  # past auth, to body validation

