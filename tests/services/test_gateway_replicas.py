"""Rate limits hold across gateway replicas: two gateway apps, each served by its own uvicorn, in
front of the same upstream service, with the share the chart configures (rate_limit_replicas = the
gateway's minimum replicas). Clients arrive through an ingress (one trusted X-Forwarded-For hop),
as the chart's trustedProxyHops sets it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gameplane.devtools.inprocess import served
from gameplane.gateway.app import UVICORN_OPTIONS, build_app
from gameplane.gateway.settings import GatewaySettings

BURST = 10  # the platform's per-address burst; refill is negligible during a test




def games_upstream() -> FastAPI:
    app = FastAPI()
    app.state.hits = 0

    @app.get("/v1/games")
    async def catalogue() -> dict[str, list[str]]:
        app.state.hits += 1
        return {"games": []}

    return app


@pytest.fixture
async def replicas() -> AsyncIterator[Any]:
    """Factory: `async with replicas(n_share)` -> (two gateway clients, the upstream app)."""

    @asynccontextmanager
    async def start(share: int) -> AsyncIterator[tuple[list[httpx.AsyncClient], FastAPI]]:
        upstream = games_upstream()
        async with AsyncExitStack() as stack:
            games_url = await stack.enter_async_context(served(upstream))
            clients = []
            for _ in range(2):
                settings = GatewaySettings(endpoints={"games": games_url}, routed_services=["games"], log_json=False,
                                           rate_limit_ip_rate=0.001, rate_limit_ip_burst=BURST,
                                           rate_limit_replicas=share, forwarded_for_hops=1)
                url = await stack.enter_async_context(served(build_app(settings), **UVICORN_OPTIONS))
                clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10)))
            yield clients, upstream

    yield start


async def _spray(clients: list[httpx.AsyncClient], client_ip: str, n: int) -> list[int]:
    """n requests of one client, spread round-robin over the replicas (as a load balancer would)."""
    out = []
    for gw in itertools.islice(itertools.cycle(clients), n):
        r = await gw.get("/v1/games", headers={"X-Forwarded-For": client_ip})
        out.append(r.status_code)
    return out


async def test_two_replicas_admit_the_platform_limit_between_them(replicas: Any) -> None:
    async with replicas(2) as (clients, upstream):
        statuses = await _spray(clients, "203.0.113.7", 3 * BURST)
        assert statuses.count(200) == BURST
        assert set(statuses) == {200, 429}
        assert upstream.state.hits == BURST
        # The limit is per client address, from the trusted hop: another client is untouched.
        other = await _spray(clients, "198.51.100.9", 2)
        assert other == [200, 200]


async def test_without_the_share_two_replicas_admit_twice_the_limit(replicas: Any) -> None:
    """Negative control: each replica enforcing the whole limit lets a client have it twice."""
    async with replicas(1) as (clients, _):
        statuses = await _spray(clients, "203.0.113.7", 3 * BURST)
        assert statuses.count(200) == 2 * BURST


async def test_a_client_pinned_to_one_replica_gets_its_share(replicas: Any) -> None:
    async with replicas(2) as (clients, _):
        statuses = await _spray(clients[:1], "203.0.113.7", BURST)
        assert statuses.count(200) == BURST // 2


async def test_untrusted_hops_cannot_choose_the_address_charged(replicas: Any) -> None:
    # A client that forges more hops than the one trusted is charged to what the ingress appended.
    async with replicas(2) as (clients, _):
        forged = [f"10.0.0.{i}, 203.0.113.7" for i in range(3 * BURST)]
        statuses = [(await clients[i % 2].get("/v1/games", headers={"X-Forwarded-For": xff})).status_code
                    for i, xff in enumerate(forged)]
        assert statuses.count(200) == BURST
