"""Payments behind the gateway of a real `gameplane up`: player routes need a player token and reach
payments with the player's id; PSP webhooks pass the partner route with no token and are judged by
payments; the gateway's body limit applies to them; both appear in the merged OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_journey import bearer, register_and_login

PROBLEMS = "https://gameplane.io/problems/"


@pytest.fixture
def gateway(platform: Any) -> Iterator[httpx.Client]:
    platform.url("payments")  # skips when payments is not part of the run
    with httpx.Client(base_url=platform.gateway, timeout=15) as client:
        yield client


def test_player_routes_need_a_token_and_reach_payments_as_that_player(gateway: httpx.Client) -> None:
    _, _, token = register_and_login(gateway)
    assert gateway.get("/v1/payments").status_code == 401
    r = gateway.get("/v1/payments", headers=bearer(token))
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    r = gateway.post("/v1/payments/deposits", headers=bearer(token),
                     json={"amount": 1000, "currency": "GBP", "psp": "nopsp"})
    assert r.status_code == 404 and r.json()["type"] == PROBLEMS + "unknown-psp", r.text


def test_webhooks_pass_without_a_token_within_the_body_limit(gateway: httpx.Client) -> None:
    r = gateway.post("/webhooks/payments/nopsp", content=b'{"id": "evt_1"}',
                     headers={"content-type": "application/json"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == PROBLEMS + "unknown-psp"  # payments' answer, not the gateway's
    big = gateway.post("/webhooks/payments/nopsp", content=b"x" * (1_048_576 + 1),
                       headers={"content-type": "application/json"})
    assert big.status_code == 413, big.text


def test_the_merged_openapi_lists_the_payments_routes(gateway: httpx.Client) -> None:
    paths = gateway.get("/openapi.json").json()["paths"]
    assert {"/v1/payments", "/v1/payments/deposits", "/v1/payments/withdrawals",
            "/webhooks/payments/{psp}"} <= set(paths)
    assert not [p for p in paths if p.startswith("/internal/")]


def test_a_player_on_a_break_cannot_deposit_at_the_edge_but_can_still_withdraw(gateway: httpx.Client) -> None:
    email, _, token = register_and_login(gateway)
    r = gateway.post("/v1/players/me/timeout", headers=bearer(token), json={"days": 1})
    assert r.status_code == 200, r.text
    from test_journey import PASSWORD
    login = gateway.post("/v1/players/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    fresh = login.json()["access_token"]  # issued with play=false
    r = gateway.post("/v1/payments/deposits", headers=bearer(fresh),
                     json={"amount": 1000, "currency": "GBP", "psp": "nopsp"})
    assert r.status_code == 403 and r.json()["type"] == PROBLEMS + "play-blocked", r.text
    # withdrawals pass the edge (payments answers: no method deposited with)
    r = gateway.post("/v1/payments/withdrawals", headers=bearer(fresh),
                     json={"amount": 1000, "currency": "GBP", "method_fingerprint": "fp-x"})
    assert r.status_code == 409 and r.json()["type"] == PROBLEMS + "unknown-method", r.text
