"""Player access tokens, attacked through the gateway in front of the real players service: only
a token signed with a key that players publishes (its JWKS) opens a player route; every other
key — another service's included — is refused, and a token missing a claim is a 401, not a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import jwt
import pytest

from gameplane.devtools.identities import NAMES, dev_identities
from gameplane.devtools.infra import EmbeddedPostgres, NatsServer
from gameplane.devtools.inprocess import listener, served
from gameplane.gateway.app import build_app as gateway_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.auth import issue_player_token
from gameplane.kit.keys import SigningKey
from gameplane.players.app import build_app as players_app
from gameplane.players.settings import PlayersSettings

PASSWORD = "Security-tier-2026!"


@pytest.fixture(scope="module")
async def edge(pg: EmbeddedPostgres, nats_server: NatsServer) -> AsyncIterator[dict[str, Any]]:
    db = f"sec_players_{uuid.uuid4().hex[:10]}"
    pg.create_database(db)
    players = players_app(PlayersSettings(database_url=pg.dsn(db), nats_url=nats_server.url, log_level="WARNING",
                                          argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1))
    async with AsyncExitStack() as stack:
        players_url = await stack.enter_async_context(served(players, listener()))
        gateway = gateway_app(GatewaySettings(endpoints={"players": players_url}, log_level="WARNING",
                                              rate_limit_ip_rate=0, rate_limit_player_rate=0))
        url = await stack.enter_async_context(served(gateway, listener()))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=15))
        email = f"sec-{uuid.uuid4().hex[:10]}@example.com"
        r = await client.post("/v1/players/register", json={"email": email, "password": PASSWORD,
                                                            "date_of_birth": "1990-01-01", "country": "MT",
                                                            "currency": "EUR"})
        assert r.status_code == 201, r.text
        login = (await client.post("/v1/players/login", json={"email": email, "password": PASSWORD})).json()
        yield {"gw": client, "players_url": players_url, "player_id": login["player_id"],
               "access": login["access_token"], "gateway": gateway}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_players_publishes_its_public_key_and_nothing_else(edge: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(edge["players_url"] + "/.well-known/jwks.json")).json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert dev_identities().key("players").kid in kids
    assert all("d" not in k for k in jwks["keys"])  # no private part
    others = {dev_identities().key(n).kid for n in NAMES if n != "players"}
    assert not kids & others
    header = jwt.get_unverified_header(edge["access"])
    assert header["alg"] == "EdDSA" and header["kid"] in kids


async def test_the_real_login_token_opens_player_routes(edge: dict[str, Any]) -> None:
    r = await edge["gw"].get("/v1/players/me", headers=bearer(edge["access"]))
    assert r.status_code == 200 and r.json()["id"] == edge["player_id"]


async def test_a_player_token_minted_with_any_other_key_is_refused(edge: dict[str, Any]) -> None:
    pid = edge["player_id"]
    keys = {name: dev_identities().key(name) for name in NAMES if name != "players"}
    keys["stranger"] = SigningKey.generate()
    assert "gateway" in keys and "wallet" in keys
    for name, key in keys.items():
        forged = issue_player_token(key, pid, play=True, kyc="verified", currency="EUR")
        r = await edge["gw"].get("/v1/players/me", headers=bearer(forged))
        assert r.status_code == 401, (name, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # negative control: the same claims with players' key pass
    genuine = issue_player_token(dev_identities().key("players"), pid, play=True, kyc="verified", currency="EUR")
    assert (await edge["gw"].get("/v1/players/me", headers=bearer(genuine))).status_code == 200


async def test_a_forged_kid_does_not_borrow_players_key(edge: dict[str, Any]) -> None:
    impostor = SigningKey(SigningKey.generate().private, dev_identities().key("players").kid)
    r = await edge["gw"].get("/v1/players/me", headers=bearer(issue_player_token(impostor, edge["player_id"])))
    assert r.status_code == 401


@pytest.mark.parametrize("missing", ["exp", "sub", "iat", "typ"])
async def test_a_correctly_signed_token_without_a_claim_is_401(edge: dict[str, Any], missing: str) -> None:
    now = int(time.time())
    claims = {"sub": edge["player_id"], "iat": now, "exp": now + 60, "iss": "players", "typ": "access"}
    del claims[missing]
    key = dev_identities().key("players")
    token = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})
    r = await edge["gw"].get("/v1/players/me", headers=bearer(token))
    assert r.status_code == 401, r.text


async def test_unknown_kids_refetch_players_keys_a_bounded_number_of_times(edge: dict[str, Any]) -> None:
    keys = edge["gateway"].state.gateway.players_keys
    before = keys.fetches
    for _ in range(20):
        r = await edge["gw"].get("/v1/players/me", headers=bearer(issue_player_token(SigningKey.generate(),
                                                                                     edge["player_id"])))
        assert r.status_code == 401
    assert keys.fetches - before <= 1  # one per min_interval (10 s), not one per made-up kid
