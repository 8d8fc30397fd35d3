"""Fault drills on real services (real Postgres and NATS): each scenario does what it says, is
reported on /readyz and in /metrics, and stops when it is turned off (through the settings file,
as a mounted ConfigMap turns it off in Kubernetes)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from gameplane.devtools.inprocess import announce_player
from gameplane.devtools.testing import as_service, running
from gameplane.sessions.app import build_app as sessions_app
from gameplane.sessions.settings import SessionsSettings
from gameplane.wallet.app import build_app as wallet_app
from gameplane.wallet.settings import WalletSettings


def _injected(service: str, scenario: str) -> float:
    return REGISTRY.get_sample_value("gameplane_fault_injected_total",
                                     {"service": service, "scenario": scenario}) or 0.0


async def _until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


@pytest.fixture
def sessions_settings(service_settings: Any, isolated_nats: Any, tmp_path: Path) -> Callable[..., SessionsSettings]:
    # A NATS of this test: the sessions consumers are durable by service name, and a drill that
    # leaves events unacknowledged must not hold back another test's sessions app.
    def make(faults: list[dict[str, Any]] | None = None, **extra: Any) -> SessionsSettings:
        return service_settings(SessionsSettings, nats_url=isolated_nats.url, faults=faults or [],
                                sweep_interval_seconds=60, **extra)
    return make


@pytest.fixture
async def wallet(service_settings: Any, isolated_nats: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = wallet_app(service_settings(WalletSettings, nats_url=isolated_nats.url,
                                      faults=[{"scenario": "errors", "ratio": "0.5"}]))
    async with running(app) as client:
        yield app, client


async def test_latency_delays_a_ratio_of_requests_which_still_succeed(sessions_settings: Any) -> None:
    app = sessions_app(sessions_settings([{"scenario": "latency", "ratio": "0.5", "latencyMs": 30}]))
    before = _injected("sessions", "latency")
    async with running(app) as client:
        player = uuid.uuid4()
        answers = [await client.get("/v1/sessions", headers=as_service(app, player_id=player)) for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 6
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ok"
        assert ready["faults"] == [{"scenario": "latency", "ratio": 0.5, "injected": 3, "latencyMs": 30}]
        assert _injected("sessions", "latency") - before == 3  # every second request, health routes not
        metrics = (await client.get("/metrics")).text
        assert 'gameplane_fault_active{scenario="latency",service="sessions"} 1.0' in metrics


async def test_errors_answer_a_problem_and_turn_off_through_the_settings_file(sessions_settings: Any,
                                                                             tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"scenario": "errors", "ratio": "1"}]))
    app = sessions_app(sessions_settings(faults_file=path))
    app.state.runtime.faults.poll_seconds = 0.2
    async with running(app) as client:
        headers = as_service(app, player_id=uuid.uuid4())
        r = await client.get("/v1/sessions", headers=headers)
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "https://gameplane.io/problems/fault-injected"
        assert (await client.get("/readyz")).status_code == 200  # errors do not touch readiness

        path.write_text("[]")  # the drill ends (a ConfigMap update, in Kubernetes)

        async def served() -> bool:
            return (await client.get("/v1/sessions", headers=headers)).status_code == 200
        assert await _until(served, 10)
        assert (await client.get("/readyz")).json()["faults"] == []
        metrics = (await client.get("/metrics")).text
        assert 'gameplane_fault_active{scenario="errors",service="sessions"} 0.0' in metrics


async def test_errors_reach_the_fast_routes_too(wallet: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = wallet
    before = _injected("wallet", "errors")
    red = {"service": "wallet", "method": "POST", "route": "/internal/wallet/bets", "status": "500"}
    red_before = REGISTRY.get_sample_value("gameplane_http_requests_total", red) or 0.0
    # A bet body the fast route refuses with 422 when it gets to see it: every second one is
    # stopped by the drill first. Ratio 0.5 is exact, so four calls give two of each.
    statuses = [(await client.post("/internal/wallet/bets", json={},
                                   headers=as_service(app, caller="games"))).status_code for _ in range(4)]
    assert sorted(statuses) == [422, 422, 500, 500]
    assert _injected("wallet", "errors") - before == 2
    # ... and counted in the route's RED metrics, as on FastAPI routes: the alerts see the drill.
    assert (REGISTRY.get_sample_value("gameplane_http_requests_total", red) or 0.0) - red_before == 2


async def test_unavailable_fails_readiness_only(sessions_settings: Any) -> None:
    app = sessions_app(sessions_settings([{"scenario": "unavailable"}]))
    async with running(app) as client:
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["checks"]["faults"].startswith("failing") and body["checks"]["database"] == "ok"
        assert body["faults"][0]["scenario"] == "unavailable"
        assert (await client.get("/livez")).status_code == 200  # not restarted by its liveness probe
        r = await client.get("/v1/sessions", headers=as_service(app, player_id=uuid.uuid4()))
        assert r.status_code == 200  # what still reaches it is served


async def test_drop_events_leaves_events_unacknowledged_until_the_drill_ends(sessions_settings: Any,
                                                                            isolated_nats: Any,
                                                                            tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"scenario": "drop-events"}]))
    app = sessions_app(sessions_settings(faults_file=path))
    rt = app.state.runtime
    rt.faults.poll_seconds = 0.2

    async def processed() -> int:
        async with rt.database.session() as s:
            return int((await s.execute(text(
                "SELECT count(*) FROM processed_events WHERE consumer = 'sessions:players.protection_changed'"
            ))).scalar_one())

    async with running(app):
        await asyncio.wait_for(rt.bus.ready.wait(), 10)
        await announce_player(isolated_nats.url, uuid.uuid4())

        async def dropped() -> bool:
            return rt.faults.injected["drop-events"] >= 1
        assert await _until(dropped), "the consumer never fetched the event"
        await asyncio.sleep(1.0)
        assert await processed() == 0  # fetched, neither handled nor acknowledged

        path.write_text("[]")

        async def handled() -> bool:
            return await processed() == 1
        # JetStream redelivers after the consumer's ack wait (30 s).
        assert await _until(handled, 60), "the dropped event was never redelivered"
        await asyncio.sleep(1.0)
        assert await processed() == 1  # once
