"""Each internal route's declared callers agree with the catalogue: a service may accept a call
from another service only if the catalogue says that service calls it (its `calls`); the only
callers outside the catalogue are the client-layer ones (the back office)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from gameplane import catalog
from gameplane.devtools.identities import CLIENTS
from gameplane.kit.auth import PLAYER_VOUCHERS, Callers, player_context

ROUTERS = {"wallet": "gameplane.wallet.api", "players": "gameplane.players.api", "games": "gameplane.games.api",
           "sessions": "gameplane.sessions.api", "bonus": "gameplane.bonus.api",
           "affiliates": "gameplane.affiliates.api"}


def declared(module: str) -> list[tuple[str, frozenset[str]]]:
    import importlib

    mod = importlib.import_module(module)
    out = []
    for router in (v for v in vars(mod).values() if isinstance(v, APIRouter)):
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            found: set[str] = set()
            stack: list[Any] = list(route.dependant.dependencies)
            while stack:
                dep = stack.pop()
                if isinstance(dep.call, Callers):
                    found |= dep.call.allowed
                if dep.call is player_context:
                    found |= PLAYER_VOUCHERS
                stack.extend(dep.dependencies)
            out.append((f"{sorted(route.methods)} {route.path}", frozenset(found)))
    return out


@pytest.mark.parametrize("callee", sorted(ROUTERS))
def test_declared_callers_are_the_catalogues_callers_of_the_service(callee: str) -> None:
    routes = declared(ROUTERS[callee])
    assert routes, "no routes found: the check would pass vacuously"
    for route, callers in routes:
        for caller in callers:
            if caller in catalog.NAMES:
                assert callee in catalog.get(caller).calls, f"{route} accepts {caller}, whose `calls` lacks {callee}"
            else:
                assert caller in CLIENTS, f"{route} accepts {caller!r}, which is neither a service nor a client"


def test_the_check_sees_declarations() -> None:
    wallet = dict(declared(ROUTERS["wallet"]))
    assert wallet["['POST'] /internal/wallet/bets"] == {"games"}  # negative control of the walk
