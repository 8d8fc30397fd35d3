"""Merging the services' OpenAPI documents into the gateway's one."""

from __future__ import annotations

from typing import Any

import pytest

from gameplane.gateway.openapi import OpenApiCache, merge
from gameplane.gateway.routes import RouteTable


def _doc(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas,
                           "securitySchemes": {"serviceToken": {"type": "http", "scheme": "bearer"}}}}


def _op(op_id: str, ref: str | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "responses": {"200": {"description": "ok"}}, **extra}
    if ref:
        op["responses"]["200"]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
    return op


PLAYERS = _doc({
    "/v1/players/me": {"get": _op("me", "Player", parameters=[
        {"in": "header", "name": "X-Player-Id", "schema": {"type": "string"}},
        {"in": "query", "name": "fields", "schema": {"type": "string"}}])},
    "/v1/players/register": {"post": _op("register", "Player")},
    "/internal/players/{id}/protection": {"get": _op("protection", "Problem")},
    "/livez": {"get": _op("livez")},
    "/providers/acme/bet": {"post": _op("not_mine")},  # routed to games, not to players
}, {
    "Player": {"type": "object", "properties": {"limits": {"type": "array",
                                                           "items": {"$ref": "#/components/schemas/Limit"}}}},
    "Limit": {"type": "object", "properties": {"value": {"type": "integer"}}},
    "Problem": {"type": "object", "properties": {"slug": {"type": "string"}}},
})

GAMES = _doc({
    "/v1/games": {"get": _op("catalog", "Game"), "post": _op("add_favourite", "Problem")},
    "/v1/games/{game_id}": {"get": _op("game", "Game"),
                            "parameters": [{"in": "path", "name": "game_id", "required": True}]},
    "/providers/acme/bet": {"post": _op("bet", "Problem")},
}, {
    "Game": {"type": "object"},
    "Problem": {"type": "object", "properties": {"code": {"type": "integer"}}},  # differs from players'
})


@pytest.fixture
def merged() -> dict[str, Any]:
    table = RouteTable(["players", "games", "wallet"])
    return merge({"players": PLAYERS, "games": GAMES}, table, unavailable=["wallet"])


def test_keeps_only_paths_routed_to_their_publisher(merged: dict[str, Any]) -> None:
    assert set(merged["paths"]) == {"/v1/players/me", "/v1/players/register", "/v1/games", "/v1/games/{game_id}",
                                    "/providers/acme/bet"}
    assert merged["paths"]["/providers/acme/bet"]["post"]["operationId"] == "games.bet"
    assert merged["paths"]["/providers/acme/bet"]["post"]["x-gameplane-service"] == "games"


def test_components_are_prefixed_and_refs_rewritten(merged: dict[str, Any]) -> None:
    schemas = merged["components"]["schemas"]
    assert schemas["players.Problem"] != schemas["games.Problem"]
    assert "Problem" not in schemas
    player = schemas["players.Player"]
    assert player["properties"]["limits"]["items"]["$ref"] == "#/components/schemas/players.Limit"
    ref = merged["paths"]["/v1/games"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/games.Game"

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for r in refs(merged):
        assert r.split("/")[-1] in schemas, r


def test_security_follows_the_gateway(merged: dict[str, Any]) -> None:
    paths = merged["paths"]
    assert paths["/v1/players/register"]["post"]["security"] == []
    assert paths["/v1/players/me"]["get"]["security"] == [{"playerToken": []}]
    assert paths["/v1/games"]["get"]["security"] == []
    assert paths["/v1/games"]["post"]["security"] == [{"playerToken": []}]
    assert "serviceToken" not in merged["components"]["securitySchemes"]
    assert "playerToken" in merged["components"]["securitySchemes"]
    assert "401" in paths["/v1/players/me"]["get"]["responses"]
    assert "429" in paths["/v1/players/register"]["post"]["responses"]


def test_gateway_set_headers_are_not_documented(merged: dict[str, Any]) -> None:
    params = merged["paths"]["/v1/players/me"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["fields"]


def test_path_level_fields_survive(merged: dict[str, Any]) -> None:
    assert merged["paths"]["/v1/games/{game_id}"]["parameters"][0]["name"] == "game_id"


def test_unavailable_services_are_listed(merged: dict[str, Any]) -> None:
    assert merged["x-gameplane-unavailable"] == ["wallet"]
    assert {t["name"] for t in merged["tags"]} == {"players", "games"}


def test_inputs_are_not_mutated() -> None:
    before = repr(PLAYERS)
    merge({"players": PLAYERS}, RouteTable(["players"]))
    assert repr(PLAYERS) == before


async def test_cache_refetches_after_ttl_and_sooner_when_something_is_missing() -> None:
    now = [0.0]
    calls: list[str] = []
    up = {"players": True, "games": False}

    async def fetch(service: str) -> dict[str, Any] | None:
        calls.append(service)
        return {"players": PLAYERS, "games": GAMES}[service] if up[service] else None

    cache = OpenApiCache(RouteTable(["players", "games"]), fetch, ttl=60.0, clock=lambda: now[0])
    doc = await cache.get()
    assert doc["x-gameplane-unavailable"] == ["games"]
    assert len(calls) == 2
    await cache.get()
    assert len(calls) == 2  # cached
    up["games"] = True
    now[0] = 6.0  # a missing service shortens the TTL to 5 s
    doc = await cache.get()
    assert doc["x-gameplane-unavailable"] == []
    assert "/v1/games" in doc["paths"]
    calls.clear()
    now[0] = 30.0
    await cache.get()
    assert calls == []  # full TTL now that everything answered
    now[0] = 67.0
    await cache.get()
    assert sorted(calls) == ["games", "players"]


def _problem_types(op: dict[str, Any], status: str) -> set[str]:
    content = op["responses"][status]["content"]
    assert list(content) == ["application/problem+json"], content
    return set(content["application/problem+json"]["schema"]["properties"]["type"]["enum"])


def test_the_gateways_own_answers_are_problems_with_their_types(merged: dict[str, Any]) -> None:
    base = "https://gameplane.io/problems/"
    me = merged["paths"]["/v1/players/me"]["get"]
    assert _problem_types(me, "401") == {base + "unauthenticated", base + "token-expired"}
    assert _problem_types(me, "429") == {base + "rate-limited"}
    assert _problem_types(me, "503") == {base + "service-unavailable"}
    assert _problem_types(me, "413") == {base + "payload-too-large"}
    # a public route: no token, so no 401 of the gateway's
    assert "401" not in merged["paths"]["/v1/players/register"]["post"]["responses"]
    # the problem schema referred to is the publishing service's, under its merged name
    ref = me["responses"]["401"]["content"]["application/problem+json"]["schema"]["allOf"][0]["$ref"]
    assert ref == "#/components/schemas/players.Problem"


def test_a_services_problem_answer_merges_with_the_gateways() -> None:
    problem = {"allOf": [{"$ref": "#/components/schemas/Problem"}],
               "properties": {"type": {"enum": ["https://gameplane.io/problems/invalid-credentials"]},
                              "status": {"enum": [401]}}}
    login = _op("login")
    login["responses"]["401"] = {"description": "Email or password is wrong",
                                 "content": {"application/problem+json": {"schema": problem}}}
    doc = _doc({"/v1/players/me": {"get": login}}, {"Problem": {"type": "object"}})
    out = merge({"players": doc}, RouteTable(["players"]))["paths"]["/v1/players/me"]["get"]
    assert _problem_types(out, "401") == {"https://gameplane.io/problems/" + s
                                          for s in ("invalid-credentials", "unauthenticated", "token-expired")}
    assert doc["paths"]["/v1/players/me"]["get"]["responses"]["401"]["content"]["application/problem+json"][
        "schema"] is problem  # the service's own document is left alone
