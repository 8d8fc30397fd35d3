"""A player's journey through the gateway of a real `gameplane up`, then an outage of one service:
its routes answer 503 while the rest keep working, and the supervisor brings it back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

PASSWORD = "journey-Through-the-gateway-7"
PROBLEMS = "https://gameplane.io/problems/"


def register_and_login(client: httpx.Client) -> tuple[str, str, str]:
    email = f"journey-{uuid.uuid4().hex[:10]}@example.com"
    reg = client.post("/v1/players/register", json={
        "email": email, "password": PASSWORD, "date_of_birth": "1990-05-17", "country": "GB", "currency": "GBP"})
    assert reg.status_code == 201, reg.text
    login = client.post("/v1/players/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["player_id"] == reg.json()["id"]
    return email, tokens["player_id"], tokens["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def other_service_reads(client: httpx.Client, token: str) -> list[str]:
    """GET operations without path parameters of the services other than players, from the
    merged OpenAPI: what must keep answering while players is down."""
    doc = client.get("/openapi.json").json()
    found = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op and op.get("x-gameplane-service") != "players" and "{" not in path:
            found.append(path)
    return found


@pytest.fixture
def gateway(platform: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.gateway, timeout=15) as client:
        yield client


def test_register_login_profile_through_the_gateway(platform: Any, gateway: httpx.Client) -> None:
    platform.url("players")
    email, player_id, token = register_and_login(gateway)

    me = gateway.get("/v1/players/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email and me.json()["id"] == player_id
    assert me.headers.get("x-request-id")

    # A second player cannot be reached by smuggling their id next to one's own token.
    _, other_id, _ = register_and_login(gateway)
    smuggled = gateway.get("/v1/players/me", headers={**bearer(token), "X-Player-Id": other_id})
    assert smuggled.json()["id"] == player_id

    anonymous = gateway.get("/v1/players/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == PROBLEMS + "unauthenticated"

    internal = gateway.get(f"/internal/players/{player_id}", headers=bearer(token))
    assert internal.status_code == 404

    doc = gateway.get("/openapi.json").json()
    assert "/v1/players/me" in doc["paths"] and "/v1/players/register" in doc["paths"]
    assert not any(p.startswith("/internal") for p in doc["paths"])
    assert doc["x-gameplane-unavailable"] == []


def test_killed_service_is_503_others_answer_and_it_comes_back(platform: Any, gateway: httpx.Client) -> None:
    platform.url("players")
    _, player_id, token = register_and_login(gateway)
    others = other_service_reads(gateway, token)

    killed = platform.kill_service("players", wait_restart=False)
    down = gateway.get("/v1/players/me", headers=bearer(token))
    assert down.status_code == 503, down.text
    problem = down.json()
    assert problem["type"] == PROBLEMS + "service-unavailable" and problem["service"] == "players"
    assert int(down.headers["retry-after"]) >= 1
    assert gateway.post("/v1/players/login", json={"email": "x@example.com", "password": PASSWORD}
                        ).status_code == 503

    # Everything that is not players keeps answering.
    assert gateway.get("/livez").status_code == 200
    assert gateway.get("/readyz").status_code == 200
    answers = {path: gateway.get(path, headers=bearer(token)) for path in others}
    for path, resp in answers.items():
        assert resp.status_code < 500, f"{path}: {resp.status_code} {resp.text}"
    if answers:
        assert any(r.status_code == 200 for r in answers.values()), {p: r.status_code for p, r in answers.items()}

    platform.wait_state("players", "ready", timeout=60, not_pid=killed)
    # The gateway's circuit may still be open for a few seconds; then a probe closes it.
    deadline = time.monotonic() + 20
    while True:
        back = gateway.get("/v1/players/me", headers=bearer(token))
        if back.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert back.status_code == 200, back.text
    assert back.json()["id"] == player_id
    assert platform.state()["players"]["restarts"] >= 1
