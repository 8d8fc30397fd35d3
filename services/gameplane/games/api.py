"""Routes: the public catalog, internal catalog admin, and the provider callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gameplane.contracts.games import GameUpsert, GameView
from gameplane.games import catalog
from gameplane.games.canonical import error_response
from gameplane.games.models import Game
from gameplane.games.rules import ProviderError
from gameplane.games.seamless import Seamless, game_view
from gameplane.kit.app import Runtime
from gameplane.kit.auth import callers
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, response_reply
from gameplane.kit.problems import Problem

public = APIRouter(prefix="/v1/games", tags=["games"])
internal = APIRouter(prefix="/internal/games", tags=["internal"])
providers = APIRouter(prefix="/providers", tags=["providers"])


class Adapter(Protocol):
    name: str
    dialect: str

    async def handle(self, core: Seamless, operation: str, body: bytes, headers: dict[str, str] | object,
                     instance: str | None = None) -> JSONResponse: ...


class ProviderInfo(BaseModel):
    """What the platform says about an integrated provider: never its key."""

    name: str
    dialect: str


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@public.get("", response_model=list[GameView])
async def list_games(request: Request, category: str | None = None, provider: str | None = None,
                     jurisdiction: str | None = None) -> list[GameView]:
    async with _rt(request).database.session() as s:
        return await catalog.listing(s, category=category, provider=provider, jurisdiction=jurisdiction)


async def _one(request: Request, game_id: str) -> GameView:
    async with _rt(request).database.session() as s:
        row = await s.get(Game, game_id)
    if row is None:
        raise Problem(404, "game-not-found", "No such game", f"game {game_id!r} is not in the catalog")
    return game_view(row)


@public.get("/{game_id}", response_model=GameView)
async def get_game(game_id: str, request: Request) -> GameView:
    game = await _one(request, game_id)
    if not game.enabled:
        raise Problem(404, "game-not-found", "No such game", f"game {game_id!r} is not in the catalog")
    return game


@internal.get("/providers", response_model=list[ProviderInfo])
async def list_providers(request: Request, caller: str = Depends(callers("backoffice"))) -> list[ProviderInfo]:
    adapters: dict[str, Adapter] = _rt(request).state["adapters"]
    return [ProviderInfo(name=name, dialect=a.dialect) for name, a in sorted(adapters.items())]


@internal.get("/{game_id}", response_model=GameView)
async def get_game_internal(game_id: str, request: Request, caller: str = Depends(callers("sessions"))) -> GameView:
    return await _one(request, game_id)


@internal.put("/{game_id}", response_model=GameView)
async def upsert_game(game_id: str, body: GameUpsert, request: Request,
                      caller: str = Depends(callers("backoffice"))) -> GameView:
    rt = _rt(request)
    if body.provider not in rt.state["adapters"]:
        raise Problem(422, "unknown-provider", "Unknown provider",
                      f"{body.provider!r} is not configured (GP_GAMES_PROVIDERS)")
    for currency, stake in body.stakes.items():
        if stake.min > stake.max:
            raise Problem(422, "validation-error", "Invalid stake range", f"{currency}: min above max")
    async with rt.database.transaction() as s:
        return await catalog.upsert(s, game_id, body)


@providers.post("/{provider}/{operation:path}", include_in_schema=True)
async def provider_call(provider: str, operation: str, request: Request) -> JSONResponse:
    """Every provider callback. The provider's dialect adapter checks the signature first."""
    return await provider_answer(_rt(request), provider, operation, await request.body(), request.headers,
                                 request.url.path)


async def provider_answer(rt: Runtime, provider: str, operation: str, body: bytes, headers: Mapping[str, str],
                          instance: str) -> JSONResponse:
    adapter: Adapter | None = rt.state["adapters"].get(provider)
    if adapter is None:
        return error_response(ProviderError("unknown-provider", f"no provider {provider!r}"), None, instance)
    return await adapter.handle(rt.state["seamless"], operation, body, headers, instance)


def fast_routes(rt: Runtime) -> list[FastRoute]:
    """Provider calls answered ahead of FastAPI (gameplane.kit.fastroutes); the route above stays
    their OpenAPI description. No service token: each adapter checks its provider's signature."""

    async def fast_provider_call(request: FastRequest) -> Reply:
        return response_reply(await provider_answer(rt, request.params["provider"], request.params["operation"],
                                                    request.body, request.headers, request.path))

    return [FastRoute("POST", "/providers/{provider}/{operation:path}", fast_provider_call)]
