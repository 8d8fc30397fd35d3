"""Routes: the public catalog, internal catalog admin, and the provider callbacks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gameplane.contracts.games import (
    AWARD_EXISTS,
    AWARD_INVALID,
    AWARD_NOT_FOUND,
    AWARD_REFUSED,
    AWARD_UNSUPPORTED,
    ERROR_CODES,
    PATH_FREE_SPIN_AWARD,
    PATH_FREE_SPINS,
    PROVIDER_UNAVAILABLE,
    RESERVED_GAME_IDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    FreeSpinAward,
    FreeSpinAwardView,
    GameUpsert,
    GameView,
    ProviderAnswer,
    ProviderProblem,
)
from gameplane.contracts.jurisdiction import JurisdictionName
from gameplane.games import aggregator, canonical, catalog, freespins, metrics
from gameplane.games.canonical import error_response
from gameplane.games.models import Game
from gameplane.games.rules import ProviderError
from gameplane.games.seamless import Seamless, game_view
from gameplane.kit.app import Runtime
from gameplane.kit.auth import callers
from gameplane.kit.db import utcnow
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, response_reply
from gameplane.kit.problems import PROBLEM_JSON, Problem, ProblemType
from gameplane.kit.problems import responses as refusals

GAME_NOT_FOUND = ProblemType(404, "game-not-found", "No such game")
UNKNOWN_PROVIDER = ProblemType(422, "unknown-provider", "Unknown provider")

public = APIRouter(prefix="/v1/games", tags=["games"])
internal = APIRouter(prefix="/internal/games", tags=["internal"])
providers = APIRouter(prefix="/providers", tags=["providers"])


class Adapter(Protocol):
    name: str
    dialect: str

    async def handle(self, core: Seamless, operation: str, body: bytes, headers: Mapping[str, str],
                     path: str, method: str = "POST") -> JSONResponse: ...


class ProviderInfo(BaseModel):
    """What the platform says about an integrated provider: never its key."""

    name: str
    dialect: str


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _playable(rt: Runtime, view: GameView) -> GameView:
    """A game whose provider has no credentials here cannot be played, whatever its row says (a row
    seeded or edited while the provider was configured, say)."""
    if view.enabled and view.provider not in rt.state["adapters"]:
        return view.model_copy(update={"enabled": False})
    return view


@public.get("", response_model=list[GameView])
async def list_games(request: Request, category: str | None = Query(None, max_length=100),
                     provider: str | None = Query(None, max_length=100),
                     jurisdiction: JurisdictionName | None = None) -> list[GameView]:
    rt = _rt(request)
    async with rt.database.session() as s:
        listed = await catalog.listing(s, category=category, provider=provider, jurisdiction=jurisdiction)
    return [v for v in listed if _playable(rt, v).enabled]


async def _one(request: Request, game_id: str) -> GameView:
    async with _rt(request).database.session() as s:
        row = await s.get(Game, game_id)
    if row is None:
        raise GAME_NOT_FOUND(f"game {game_id!r} is not in the catalog")
    return _playable(_rt(request), game_view(row))


@public.get("/{game_id}", response_model=GameView, responses=refusals(GAME_NOT_FOUND))
async def get_game(game_id: str, request: Request) -> GameView:
    game = await _one(request, game_id)
    if not game.enabled:
        raise GAME_NOT_FOUND(f"game {game_id!r} is not in the catalog")
    return game


@internal.get("/providers", response_model=list[ProviderInfo])
async def list_providers(request: Request, caller: str = Depends(callers("backoffice"))) -> list[ProviderInfo]:
    adapters: dict[str, Adapter] = _rt(request).state["adapters"]
    return [ProviderInfo(name=name, dialect=a.dialect) for name, a in sorted(adapters.items())]


def _provider_http(rt: Runtime) -> httpx.AsyncClient:
    http = rt.state.get("provider_http")
    if http is None:
        http = rt.state["provider_http"] = httpx.AsyncClient(timeout=rt.settings.provider_timeout_seconds)  # type: ignore[attr-defined]
    return http  # type: ignore[no-any-return]


@internal.post(PATH_FREE_SPINS.removeprefix("/internal/games"), response_model=FreeSpinAwardView,
               responses=refusals(AWARD_EXISTS, AWARD_INVALID, AWARD_REFUSED, AWARD_UNSUPPORTED, GAME_NOT_FOUND,
                                  PROVIDER_UNAVAILABLE))
async def award_free_spins(body: FreeSpinAward, request: Request,
                           caller: str = Depends(callers("bonus"))) -> FreeSpinAwardView:
    """Free spins for a player, forwarded to the game's provider; answered once the provider took them.
    Idempotent on award_id: the same award again gets its current view, other terms under the id a 409."""
    rt = _rt(request)
    core: Seamless = rt.state["seamless"]
    game = await core.game(body.game_id)
    if game is None:
        raise GAME_NOT_FOUND(f"game {body.game_id!r} is not in the catalog")
    provider = rt.settings.providers.get(game.provider)  # type: ignore[attr-defined]
    freespins.check_award(body, game, provider, utcnow())
    assert provider is not None
    return await freespins.create(rt.database.pool, _provider_http(rt), body, game, provider)


@internal.get(PATH_FREE_SPIN_AWARD.removeprefix("/internal/games"), response_model=FreeSpinAwardView,
              responses=refusals(AWARD_NOT_FOUND))
async def get_free_spin_award(award_id: str, request: Request,
                              caller: str = Depends(callers("bonus", "backoffice"))) -> FreeSpinAwardView:
    row = await freespins.load(_rt(request).database.pool, award_id)
    if row is None or not row["accepted"]:
        raise AWARD_NOT_FOUND(f"no award {award_id!r}" if row is None else
                              f"award {award_id!r} is not yet accepted by its provider: repeat the POST")
    return freespins.view(row)


@internal.get("/{game_id}", response_model=GameView, responses=refusals(GAME_NOT_FOUND))
async def get_game_internal(game_id: str, request: Request,
                            caller: str = Depends(callers("sessions", "bonus", "analytics"))) -> GameView:
    return await _one(request, game_id)


@internal.put("/{game_id}", response_model=GameView, responses=refusals(UNKNOWN_PROVIDER))
async def upsert_game(game_id: str, body: GameUpsert, request: Request,
                      caller: str = Depends(callers("backoffice"))) -> GameView:
    rt = _rt(request)
    if game_id in RESERVED_GAME_IDS:  # GET /internal/games/providers lists providers: the id could not be read
        raise Problem(422, "validation-error", "Reserved game id", "'providers' names the provider listing")
    if body.provider not in rt.state["adapters"]:
        raise UNKNOWN_PROVIDER(f"{body.provider!r} is not configured (GP_GAMES_PROVIDERS)")
    for currency, stake in body.stakes.items():
        if stake.min > stake.max:
            raise Problem(422, "validation-error", "Invalid stake range", f"{currency}: min above max")
    async with rt.database.transaction() as s:
        return await catalog.upsert(s, game_id, body)


# ---- provider callbacks ------------------------------------------------------------------------------
# The fast route below answers them; these FastAPI routes describe them (and answer them too when the
# app runs without its fast layer). No body parameter: the body is verified as bytes before parsing.

def _signed_headers(timestamp: str, signature: str, how: str) -> list[dict[str, Any]]:
    return [
        {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "your provider name on the platform"},
        {"name": timestamp, "in": "header", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
         "description": "Unix time (seconds) of signing; refused outside the clock-skew window (300 s)"},
        {"name": signature, "in": "header", "required": True, "schema": {"type": "string"},
         "description": f"{how} of `METHOD\\nPATH\\nTIMESTAMP\\n` + raw body"},
    ]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}


_PROBLEM_SCHEMA = ProviderProblem.model_json_schema()
_CANONICAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": ", ".join(sorted(c for c, st in ERROR_CODES.items() if st == status)),
             "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}
    for status in sorted(set(ERROR_CODES.values()))
}
_AGG_ERROR_SCHEMA = aggregator.AggregatorError.model_json_schema()
_AGGREGATOR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "`RS_OK` with the balance, or a refusal `RS_ERROR_*`",
          "content": {"application/json": {"schema": {"anyOf": [aggregator.AggregatorAnswer.model_json_schema(),
                                                                 _AGG_ERROR_SCHEMA]}}}},
    503: {"description": "transient (`RS_ERROR_UNKNOWN`): retry the same call",
          "content": {"application/json": {"schema": _AGG_ERROR_SCHEMA}}},
}


def _provider_route(operation: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    # No declared parameter: FastAPI validates nothing before the adapter checks the signature (and
    # invents no 422 the route never gives); the path parameter is documented in openapi_extra.
    async def call(request: Request) -> JSONResponse:
        return await provider_answer(_rt(request), request.path_params["provider"], operation,
                                     await request.body(), request.headers, request.url.path)
    return call


for _op, _model in canonical.CALLS.items():
    providers.add_api_route(
        f"/{{provider}}/{_op}", _provider_route(_op), methods=["POST"], response_model=ProviderAnswer,
        tags=["providers (canonical dialect)"], summary=f"{_op} (canonical dialect)",
        responses=_CANONICAL_RESPONSES, operation_id=f"provider_{_op}",
        openapi_extra={"parameters": _signed_headers(TIMESTAMP_HEADER, SIGNATURE_HEADER, "hex HMAC-SHA256"),
                       "requestBody": _body(_model)})
for _path, _op in aggregator.OPERATIONS.items():
    providers.add_api_route(
        f"/{{provider}}/{_path}", _provider_route(_path), methods=["POST"], tags=["providers (aggregator dialect)"],
        summary=f"{_op} (aggregator dialect)", responses=_AGGREGATOR_RESPONSES,
        operation_id=f"provider_aggregator_{_op}",
        openapi_extra={"parameters": _signed_headers(aggregator.TIMESTAMP_HEADER, aggregator.SIGNATURE_HEADER,
                                                     "base64 RSA PKCS#1 v1.5 SHA-256 signature"),
                       "requestBody": _body(aggregator.MODELS[_op])})


@providers.post("/{provider}/{operation:path}", include_in_schema=False)
async def provider_call(provider: str, operation: str, request: Request) -> JSONResponse:
    """Every other provider path: the adapter answers (an unknown operation is a refusal in its dialect)."""
    return await provider_answer(_rt(request), provider, operation, await request.body(), request.headers,
                                 request.url.path)


async def provider_answer(rt: Runtime, provider: str, operation: str, body: bytes, headers: Mapping[str, str],
                          path: str) -> JSONResponse:
    adapter: Adapter | None = rt.state["adapters"].get(provider)
    if adapter is None:
        return error_response(ProviderError("unknown-provider", f"no provider {provider!r}"), None, path)
    start = time.perf_counter()
    try:
        return await adapter.handle(rt.state["seamless"], operation, body, headers, path)
    finally:
        metrics.CALLBACK_SECONDS.labels(provider, _action(operation)).observe(time.perf_counter() - start)


def _action(operation: str) -> str:
    """The canonical name of a provider operation in either dialect, `other` for any other path."""
    name = aggregator.OPERATIONS.get(operation, operation)
    return name if name in canonical.CALLS else "other"


def fast_routes(rt: Runtime) -> list[FastRoute]:
    """Provider calls answered ahead of FastAPI (gameplane.kit.fastroutes); the routes above stay
    their OpenAPI description. No service token: each adapter checks its provider's signature."""

    async def fast_provider_call(request: FastRequest) -> Reply:
        return response_reply(await provider_answer(rt, request.params["provider"], request.params["operation"],
                                                    request.body, request.headers, request.path))

    return [FastRoute("POST", "/providers/{provider}/{operation:path}", fast_provider_call)]
