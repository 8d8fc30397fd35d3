"""Internal calls: service tokens are required and checked, only idempotent calls are retried,
and the circuit breaker opens on a dead dependency and closes once it is back."""

import asyncio
import socket

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import served
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.auth import callers, issue_service_token
from gameplane.kit.breaker import CircuitBreaker, State
from gameplane.kit.http import DependencyError, ServiceClient
from gameplane.kit.keys import SigningKey
from gameplane.kit.settings import ServiceSettings, settings_config

UPSTREAM, STRANGER = SigningKey.generate(), SigningKey.generate()
GAMES = dev_identities().key("games")
from_games = callers("games")


class Echo(BaseModel):
    key: str
    amount: int


class UpSettings(ServiceSettings):
    model_config = settings_config("upstream")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream_app():
    rt = Runtime("upstream", UpSettings(nats_url=None, service_key=UPSTREAM.pem(),
                                           public_keys=dev_identities().public_keys()))
    router = APIRouter()
    calls = {"flaky": 0, "post": 0, "down": 0}

    @router.get("/internal/upstream/whoami")
    async def whoami(caller: str = Depends(from_games)) -> dict:
        return {"caller": caller}

    @router.get("/internal/upstream/flaky")
    async def flaky(caller: str = Depends(from_games)):
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            from fastapi.responses import JSONResponse
            return JSONResponse({"status": 503}, status_code=503)
        return {"ok": True}

    @router.post("/internal/upstream/unsafe")
    async def unsafe(caller: str = Depends(from_games)):
        from fastapi.responses import JSONResponse
        calls["post"] += 1
        return JSONResponse({"status": 503}, status_code=503)

    @router.get("/internal/upstream/down")
    async def down(caller: str = Depends(from_games)):
        from fastapi.responses import JSONResponse
        calls["down"] += 1
        return JSONResponse({"status": 503}, status_code=503)

    @router.post("/internal/upstream/echo")
    async def echo(body: Echo, caller: str = Depends(from_games)) -> Echo:
        return body

    app = create_app(rt, [router], title="upstream")
    app.state.calls = calls
    return app


@pytest.fixture
async def upstream():
    app = upstream_app()
    port = _free_port()
    async with served(app, port=port):
        yield app, port


async def test_internal_routes_require_a_token_for_this_service(upstream):
    _, port = upstream
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get("/internal/upstream/whoami")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/unauthenticated")
        wrong_aud = issue_service_token(GAMES, "games", "wallet")
        r = await c.get("/internal/upstream/whoami", headers={"authorization": f"Bearer {wrong_aud}"})
        assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
        forged = issue_service_token(STRANGER, "games", "upstream")
        r = await c.get("/internal/upstream/whoami", headers={"authorization": f"Bearer {forged}"})
        assert r.status_code == 401
    client = ServiceClient("games", "upstream", base, GAMES)
    r = await client.get("/internal/upstream/whoami")
    assert r.status_code == 200 and r.json() == {"caller": "games"}
    await client.aclose()


def retrying_client(port: int) -> ServiceClient:
    """Three attempts per call, and a breaker that stays closed through them."""
    return ServiceClient("games", "upstream", f"http://127.0.0.1:{port}", GAMES, retries=3,
                         breaker=CircuitBreaker("upstream", failure_threshold=100))


async def test_only_idempotent_calls_are_retried(upstream):
    app, port = upstream
    client = retrying_client(port)
    r = await client.get("/internal/upstream/flaky")
    assert r.status_code == 200 and app.state.calls["flaky"] == 3
    r = await client.post("/internal/upstream/unsafe", json={})
    assert r.status_code == 503 and app.state.calls["post"] == 1
    await client.aclose()


async def test_retries_stop_after_the_configured_attempts_and_return_the_last_answer(upstream):
    app, port = upstream
    client = retrying_client(port)
    r = await client.get("/internal/upstream/down")
    assert r.status_code == 503 and app.state.calls["down"] == 3
    await client.aclose()


async def test_a_pre_encoded_json_body_is_sent_as_json_and_read_back_as_a_model(upstream):
    _, port = upstream
    client = ServiceClient("games", "upstream", f"http://127.0.0.1:{port}", GAMES)
    sent = Echo(key="k-1", amount=250)
    r = await client.post("/internal/upstream/echo", content=sent.model_dump_json().encode(), idempotent=True)
    assert r.status_code == 200 and r.model(Echo) == sent
    r = await client.post("/internal/upstream/echo", content=b'{"key": "k-2"}')
    assert r.status_code == 422  # validated by the upstream like any JSON body
    await client.aclose()


async def test_circuit_opens_on_a_dead_dependency_and_recovers():
    port = _free_port()
    breaker = CircuitBreaker("upstream", failure_threshold=3, reset_timeout=0.5)
    client = ServiceClient("games", "upstream", f"http://127.0.0.1:{port}", GAMES, retries=1,
                           timeout=0.5, breaker=breaker)
    for _ in range(3):
        with pytest.raises(DependencyError, match="unreachable"):
            await client.get("/internal/upstream/whoami")
    assert breaker.state is State.OPEN
    with pytest.raises(DependencyError, match="circuit"):
        await client.get("/internal/upstream/whoami")

    async with served(upstream_app(), port=port):
        with pytest.raises(DependencyError, match="circuit"):
            await client.get("/internal/upstream/whoami")  # still open: fail fast, no call
        await asyncio.sleep(0.6)
        r = await client.get("/internal/upstream/whoami")  # half-open probe succeeds
        assert r.status_code == 200
        assert breaker.state is State.CLOSED
    await client.aclose()
