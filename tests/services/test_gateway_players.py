"""The gateway in front of the real players service (its own database on the session Postgres,
the session NATS), both served by uvicorn on loopback ports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gameplane.devtools.infra import free_port
from gameplane.devtools.inprocess import served
from gameplane.gateway.app import UVICORN_OPTIONS, build_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings

PASSWORD = "through-The-gateway-123"
PROBLEMS = "https://gameplane.io/problems/"




@pytest.fixture(scope="module")
async def gw(module_service_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    players = build_players(module_service_settings(
        PlayersSettings, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1))
    async with served(players) as players_url:
        # sessions: nobody listens there; play must be refused before the gateway even tries
        gateway = build_app(GatewaySettings(endpoints={"players": players_url,
                                                       "sessions": f"http://127.0.0.1:{free_port()}"}))
        async with served(gateway, **UVICORN_OPTIONS) as url, httpx.AsyncClient(base_url=url, timeout=15) as c:
            yield c


async def signup(gw: httpx.AsyncClient) -> tuple[str, str, str]:
    email = f"gw-{uuid.uuid4().hex[:10]}@example.com"
    reg = await gw.post("/v1/players/register", json={
        "email": email, "password": PASSWORD, "date_of_birth": "1991-02-03", "country": "DE", "currency": "EUR"})
    assert reg.status_code == 201, reg.text
    login = await gw.post("/v1/players/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return email, login.json()["player_id"], login.json()["access_token"]


async def test_register_login_profile(gw: httpx.AsyncClient) -> None:
    email, player_id, token = await signup(gw)
    me = await gw.get("/v1/players/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == player_id and me.json()["email"] == email


async def test_a_player_reaches_only_their_own_profile(gw: httpx.AsyncClient) -> None:
    _, alice, alice_token = await signup(gw)
    _, bob, _ = await signup(gw)
    me = await gw.get("/v1/players/me", headers={"authorization": f"Bearer {alice_token}", "x-player-id": bob})
    assert me.json()["id"] == alice
    internal = await gw.get(f"/internal/players/{bob}/protection", headers={"authorization": f"Bearer {alice_token}"})
    assert internal.status_code == 404


async def test_profile_needs_a_token(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/v1/players/me")
    assert resp.status_code == 401
    assert resp.json()["type"] == PROBLEMS + "unauthenticated"


async def test_the_service_problems_pass_through(gw: httpx.AsyncClient) -> None:
    email, _, _ = await signup(gw)
    dup = await gw.post("/v1/players/register", json={
        "email": email, "password": PASSWORD, "date_of_birth": "1991-02-03", "country": "DE", "currency": "EUR"})
    assert dup.status_code == 409
    assert dup.headers["content-type"] == "application/problem+json"


async def test_merged_openapi_describes_the_real_service(gw: httpx.AsyncClient) -> None:
    doc = (await gw.get("/openapi.json")).json()
    assert {"/v1/players/register", "/v1/players/login", "/v1/players/me"} <= set(doc["paths"])
    assert not any(p.startswith("/internal") for p in doc["paths"])
    assert doc["paths"]["/v1/players/register"]["post"]["security"] == []
    assert doc["paths"]["/v1/players/me"]["get"]["security"] == [{"playerToken": []}]
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    found = refs(doc)
    assert found and all(r.removeprefix("#/components/schemas/") in schemas for r in found)
    assert "players.PlayerOut" in schemas


async def test_a_time_out_blocks_play_at_the_gateway(gw: httpx.AsyncClient) -> None:
    email, _, token = await signup(gw)
    auth = {"authorization": f"Bearer {token}"}
    before = await gw.post("/v1/sessions", json={"game_id": "x"}, headers=auth)
    assert before.status_code == 503  # allowed to play: it reached for sessions (which is down here)
    took = await gw.post("/v1/players/me/timeout", json={"days": 1}, headers=auth)
    assert took.status_code == 200, took.text
    login = await gw.post("/v1/players/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["play"] is False
    blocked_auth = {"authorization": f"Bearer {login.json()['access_token']}"}
    blocked = await gw.post("/v1/sessions", json={"game_id": "x"}, headers=blocked_auth)
    assert blocked.status_code == 403
    assert blocked.json()["type"] == PROBLEMS + "play-blocked"
    me = await gw.get("/v1/players/me", headers=blocked_auth)
    assert me.status_code == 200  # everything but play still works (withdrawals must)


async def test_a_login_tells_risk_where_it_came_from(gw: httpx.AsyncClient, nats_server: Any) -> None:
    """players.logged_in carries the address the gateway saw (a client's own X-Client-Ip is not
    believed) and the device id the client sent."""
    from gameplane.devtools.testing import stored_events

    email, player_id, _ = await signup(gw)
    again = await gw.post("/v1/players/login", json={"email": email, "password": PASSWORD},
                          headers={"X-Device-Id": "phone-7f3a", "X-Client-Ip": "203.0.113.66"})
    assert again.status_code == 200
    events = await stored_events(nats_server.url, "gameplane.players.logged_in", {"player_id": player_id}, 2)
    assert [(e["data"]["ip"], e["data"]["device_id"]) for e in events] == [
        ("127.0.0.1", None), ("127.0.0.1", "phone-7f3a")]
