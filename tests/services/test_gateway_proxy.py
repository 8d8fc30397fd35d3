"""The gateway in front of real upstream HTTP servers (uvicorn on loopback ports), itself served
by uvicorn: tokens, routing, smuggling, limits, CORS, outages, the merged OpenAPI."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.infra import free_port
from gameplane.devtools.inprocess import served
from gameplane.gateway.app import UVICORN_OPTIONS, build_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.auth import issue_player_token, issue_service_token, verify_service_token
from gameplane.kit.keys import SigningKey
from gameplane.kit.problems import PROBLEM_BASE, Problem

IDS = dev_identities()  # the gateway's settings come from them (tests/conftest.py)
TRUSTED = IDS.key_set()


class Me(BaseModel):
    player_id: str
    service: str


def upstream_app(name: str) -> FastAPI:
    """A stand-in service: checks the gateway's service token like the kit does and echoes what
    it received, so tests see exactly what crossed the gateway."""
    app = FastAPI(title=name)
    app.state.calls = []

    async def echo(request: Request) -> dict[str, Any]:
        app.state.calls.append(request.url.path)
        auth = request.headers.get("authorization", "")
        try:
            claims = verify_service_token(TRUSTED, auth.removeprefix("Bearer "), name)
        except Problem as exc:
            claims = {"error": exc.slug}
        return {"service": name, "path": request.url.path, "raw_path": request.scope["raw_path"].decode(),
                "query": request.url.query, "method": request.method,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body": (await request.body()).decode(), "claims": claims}

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks() -> dict[str, Any]:
        app.state.jwks_fetches = getattr(app.state, "jwks_fetches", 0) + 1
        return TRUSTED.owned_by(name).jwks()  # what players publishes (the others publish nothing)

    @app.get(f"/v1/{name}/me", response_model=Me)
    async def me(request: Request) -> Me:
        return Me(player_id=request.headers.get("x-player-id", ""), service=name)

    @app.post(f"/v1/{name}/register")
    async def register(request: Request) -> dict[str, Any]:
        return await echo(request)

    @app.get(f"/internal/{name}/secret")
    async def secret() -> dict[str, str]:
        return {"secret": "never through the gateway"}

    @app.get(f"/v1/{name}/slow", include_in_schema=False)
    async def slow() -> dict[str, str]:
        await asyncio.sleep(3)
        return {"late": "yes"}

    @app.get(f"/v1/{name}/big", include_in_schema=False)
    async def big() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(64):
                yield bytes([65 + i % 26]) * 16384

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get(f"/v1/{name}/cookie", include_in_schema=False)
    async def cookie() -> Response:
        r = JSONResponse({"ok": True})
        r.set_cookie("upstream", "secret-of-one-player")
        return r

    @app.get(f"/v1/{name}/boom", include_in_schema=False)
    async def boom() -> Response:
        return JSONResponse({"type": "x"}, status_code=500)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def anything(request: Request, path: str) -> dict[str, Any]:
        return await echo(request)

    return app




@pytest.fixture(scope="module")
async def upstreams() -> AsyncIterator[dict[str, Any]]:
    players, games = upstream_app("players"), upstream_app("games")
    async with served(players) as players_url, served(games) as games_url:
        yield {"players": players, "games": games,
               "endpoints": {"players": players_url, "games": games_url,
                             "wallet": f"http://127.0.0.1:{free_port()}"}}  # nobody listens: down


Gateway = Callable[..., Awaitable[Any]]


@pytest.fixture
async def gateway(upstreams: dict[str, Any]) -> AsyncIterator[Callable[..., Any]]:
    """Factory: `async with gateway(**settings) as client` runs a gateway with those settings."""

    @asynccontextmanager
    async def start(tracing: bool = False, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        fields: dict[str, Any] = {"endpoints": upstreams["endpoints"], "log_json": False,
                                  "rate_limit_ip_rate": 0, "rate_limit_player_rate": 0, **overrides}
        app = build_app(GatewaySettings(**fields))
        # What an OTLP endpoint switches on, without exporting anywhere from a test.
        app.state.gateway.tracing = tracing
        async with served(app, **UVICORN_OPTIONS) as url, \
                httpx.AsyncClient(base_url=url, timeout=10) as client:
            client.gateway = app.state.gateway  # type: ignore[attr-defined]  # for tests that turn its clocks
            yield client

    yield start


def player_token(player_id: uuid.UUID | None = None, **claims: Any) -> str:
    return issue_player_token(IDS.key("players"), player_id or uuid.uuid4(), **claims)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_problem(resp: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    return body


def headers_of(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k == name]


# --- authentication ---------------------------------------------------------------------------


async def test_player_route_forwards_identity_and_service_token(gateway: Any) -> None:
    pid = uuid.uuid4()
    async with gateway() as gw:
        resp = await gw.get("/v1/players/profile?x=1&y=%2F", headers={
            **bearer(player_token(pid)), "x-request-id": "req-123", "traceparent":
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "connection": "keep-alive, x-hop",
            "x-hop": "must-not-pass", "x-custom": "passes"})
    assert resp.status_code == 200, resp.text
    echo = resp.json()
    assert echo["service"] == "players"
    assert echo["query"] == "x=1&y=%2F"  # forwarded byte for byte
    assert headers_of(echo, "x-player-id") == [str(pid)]
    assert echo["claims"]["iss"] == "gateway" and echo["claims"]["aud"] == "players"
    assert headers_of(echo, "x-request-id") == ["req-123"]
    assert headers_of(echo, "traceparent") == ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
    assert headers_of(echo, "x-custom") == ["passes"]
    assert headers_of(echo, "x-hop") == []
    assert headers_of(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert resp.headers["x-request-id"] == "req-123"


async def test_with_tracing_the_gateway_span_continues_the_client_trace(gateway: Any) -> None:
    trace_id, client_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    async with gateway(tracing=True) as gw:
        resp = await gw.get("/v1/players/x", headers={**bearer(player_token()),
                                                      "traceparent": f"00-{trace_id}-{client_span}-01"})
    (forwarded,) = headers_of(resp.json(), "traceparent")
    _, got_trace, got_span, _ = forwarded.split("-")
    assert got_trace == trace_id and got_span != client_span  # the parent upstream is the gateway's span


async def test_request_id_is_minted_when_missing_or_unsafe(gateway: Any) -> None:
    async with gateway() as gw:
        resp = await gw.get("/v1/players/x", headers={**bearer(player_token()), "x-request-id": "bad id\twith junk"})
    rid = headers_of(resp.json(), "x-request-id")
    assert len(rid) == 1 and rid[0] != "bad id\twith junk" and len(rid[0]) == 32
    assert resp.headers["x-request-id"] == rid[0]


# Header factories: tokens are minted when the test runs, not at collection (a full run reaches
# this test minutes later, past a service token's 60 s life).
@pytest.mark.parametrize(("make_headers", "slug"), [
    (lambda: {}, "unauthenticated"),
    (lambda: {"authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated"),
    (lambda: {"authorization": "Bearer"}, "unauthenticated"),
    (lambda: {"authorization": "Bearer not.a.jwt"}, "unauthenticated"),
    (lambda: bearer(issue_player_token(SigningKey.generate(), uuid.uuid4())), "unauthenticated"),
    # signed by a real service of the platform, but not players
    (lambda: bearer(issue_player_token(IDS.key("wallet"), uuid.uuid4())), "unauthenticated"),
    (lambda: bearer(player_token(ttl=-120)), "token-expired"),
    # a service token is not a player token
    (lambda: bearer(issue_service_token(IDS.key("players"), "players", "gateway")), "unauthenticated"),
], ids=["none", "basic", "empty-bearer", "garbage", "foreign-key", "other-service-key", "expired", "service-token"])
async def test_missing_bad_or_expired_token_is_401(gateway: Any, upstreams: dict[str, Any],
                                                   make_headers: Callable[[], dict[str, str]], slug: str) -> None:
    headers = make_headers()
    upstreams["players"].state.calls.clear()
    async with gateway() as gw:
        resp = await gw.get("/v1/players/me", headers=headers)
    assert_problem(resp, 401, slug)
    assert resp.headers["www-authenticate"] == "Bearer"
    assert upstreams["players"].state.calls == []


async def test_public_routes_need_no_token_and_carry_no_player(gateway: Any) -> None:
    async with gateway() as gw:
        reg = await gw.post("/v1/players/register", json={"email": "a@b.c"},
                            headers={"x-player-id": str(uuid.uuid4())})
        catalog = await gw.get("/v1/games/catalog")
        provider = await gw.post("/providers/acme/bet", content=b'{"amount":100}',
                                 headers={"x-signature": "abc", **bearer(player_token())})
    assert reg.status_code == 200 and catalog.status_code == 200 and provider.status_code == 200
    assert reg.json()["body"] == '{"email":"a@b.c"}'
    for echo in (reg.json(), catalog.json(), provider.json()):
        assert headers_of(echo, "x-player-id") == []
        assert echo["claims"].get("iss") == "gateway"  # the client's Authorization never passes
    assert provider.json()["service"] == "games"
    assert headers_of(provider.json(), "x-signature") == ["abc"]


async def test_player_id_cannot_be_smuggled(gateway: Any) -> None:
    pid, other = uuid.uuid4(), uuid.uuid4()
    async with gateway() as gw:
        resp = await gw.get("/v1/players/me", headers={**bearer(player_token(pid)), "X-Player-Id": str(other)})
        dup = await gw.get("/v1/players/x", headers=[("authorization", f"Bearer {player_token(pid)}"),
                                                     ("x-player-id", str(other)), ("X-PLAYER-ID", str(other))])
        underscored = await gw.get("/v1/players/x", headers={**bearer(player_token(pid)), "X_Player_Id": str(other),
                                                             "x_authorization": "Bearer forged"})
    assert resp.json() == {"player_id": str(pid), "service": "players"}
    assert headers_of(dup.json(), "x-player-id") == [str(pid)]
    assert headers_of(underscored.json(), "x_player_id") == []
    assert headers_of(underscored.json(), "x_authorization") == ["Bearer forged"]  # not a field we set


async def test_play_routes_refused_when_play_is_blocked(gateway: Any, upstreams: dict[str, Any]) -> None:
    # players answers only for its keys (JWKS): the token is checked, then play is refused
    eps = {"players": upstreams["endpoints"]["players"], "sessions": "http://127.0.0.1:1"}
    async with gateway(endpoints=eps) as gw:
        blocked = await gw.post("/v1/sessions", json={}, headers=bearer(player_token(play=False)))
    assert_problem(blocked, 403, "play-blocked")


async def test_play_allowed_and_other_routes_unaffected_by_play_claim(gateway: Any, upstreams: dict[str, Any]
                                                                      ) -> None:
    eps = {**upstreams["endpoints"], "sessions": upstreams["endpoints"]["players"]}  # echo stands in
    async with gateway(endpoints=eps) as gw:
        ok = await gw.post("/v1/sessions", json={}, headers=bearer(player_token(play=True)))
        read = await gw.get("/v1/sessions/abc", headers=bearer(player_token(play=False)))
        profile = await gw.get("/v1/players/me", headers=bearer(player_token(play=False)))
    assert ok.status_code == 200 and read.status_code == 200 and profile.status_code == 200


# --- what is never routed ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/internal/players/secret", "/internal/games/secret",
                                  "/v1/players/../internal/players/secret",
                                  "/v1/players/%2e%2e/internal/players/secret",
                                  "/v1/unknown/thing", "/v1/rgs/spin"])
async def test_internal_and_unknown_paths_are_not_routed(gateway: Any, upstreams: dict[str, Any], path: str
                                                         ) -> None:
    upstreams["players"].state.calls.clear()
    async with gateway(endpoints={**upstreams["endpoints"], "rgs": upstreams["endpoints"]["players"]}) as gw:
        resp = await gw.get(path, headers=bearer(player_token()))
    assert resp.status_code in (400, 404), resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert "never through the gateway" not in resp.text
    assert upstreams["players"].state.calls == []


# --- limits -----------------------------------------------------------------------------------


async def test_player_rate_limit_answers_429_with_retry_after(gateway: Any) -> None:
    pid = uuid.uuid4()
    async with gateway(rate_limit_player_rate=0.5, rate_limit_player_burst=3) as gw:
        statuses = [(await gw.get("/v1/players/me", headers=bearer(player_token(pid)))).status_code
                    for _ in range(3)]
        limited = await gw.get("/v1/players/me", headers=bearer(player_token(pid)))
        other = await gw.get("/v1/players/me", headers=bearer(player_token()))
        public = await gw.get("/v1/games/catalog")
    assert statuses == [200, 200, 200]
    body = assert_problem(limited, 429, "rate-limited")
    assert body["limit"] == "player"
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert other.status_code == 200 and public.status_code == 200


async def test_provider_callbacks_have_their_own_partner_limit(gateway: Any) -> None:
    """A studio's RGS is not throttled by the per-address limit sized for players' browsers."""
    async with gateway(rate_limit_ip_rate=0.01, rate_limit_ip_burst=1,
                       rate_limit_partner_rate=0.01, rate_limit_partner_burst=5) as gw:
        player_side = [await gw.get("/v1/games/catalog") for _ in range(2)]
        provider_side = [await gw.post("/providers/acme/bet", content=b"{}") for _ in range(6)]
    assert [r.status_code for r in player_side] == [200, 429]
    assert [r.status_code for r in provider_side[:5]] == [200] * 5
    assert assert_problem(provider_side[5], 429, "rate-limited")["limit"] == "partner"


async def test_ip_rate_limit_applies_before_authentication(gateway: Any) -> None:
    async with gateway(rate_limit_ip_rate=0.1, rate_limit_ip_burst=2) as gw:
        first = [await gw.get("/v1/games/catalog"), await gw.get("/v1/players/me")]
        limited = await gw.get("/v1/players/me", headers=bearer(player_token()))
        health = await gw.get("/livez")
    assert [r.status_code for r in first] == [200, 401]
    assert assert_problem(limited, 429, "rate-limited")["limit"] == "ip"
    assert int(limited.headers["retry-after"]) >= 9
    assert health.status_code == 200  # the gateway's own endpoints are not proxied nor limited


async def test_client_cannot_choose_its_address_with_x_forwarded_for(gateway: Any) -> None:
    async with gateway(rate_limit_ip_rate=0.01, rate_limit_ip_burst=1) as gw:
        first = await gw.get("/v1/games/catalog", headers={"x-forwarded-for": "1.1.1.1"})
        second = await gw.get("/v1/games/catalog", headers={"x-forwarded-for": "2.2.2.2"})
    assert first.status_code == 200
    assert_problem(second, 429, "rate-limited")
    assert headers_of(first.json(), "x-forwarded-for") == ["1.1.1.1, 127.0.0.1"]


async def test_trusted_proxy_hop_decides_the_address(gateway: Any) -> None:
    async with gateway(rate_limit_ip_rate=0.01, rate_limit_ip_burst=1, forwarded_for_hops=1) as gw:
        first = await gw.get("/v1/games/catalog", headers={"x-forwarded-for": "6.6.6.6, 1.1.1.1"})
        other = await gw.get("/v1/games/catalog", headers={"x-forwarded-for": "6.6.6.6, 2.2.2.2"})
        again = await gw.get("/v1/games/catalog", headers={"x-forwarded-for": "7.7.7.7, 1.1.1.1"})
    assert first.status_code == 200 and other.status_code == 200
    assert_problem(again, 429, "rate-limited")


async def test_body_size_limit(gateway: Any) -> None:
    async with gateway(max_body_bytes=1000) as gw:
        ok = await gw.post("/v1/players/register", content=b"x" * 1000)
        too_big = await gw.post("/v1/players/register", content=b"x" * 1001)

        async def stream() -> AsyncIterator[bytes]:  # chunked: no content-length to judge up front
            for _ in range(4):
                yield b"y" * 400

        chunked = await gw.post("/v1/players/register", content=stream())
    assert ok.status_code == 200 and len(ok.json()["body"]) == 1000
    assert_problem(too_big, 413, "payload-too-large")
    assert_problem(chunked, 413, "payload-too-large")


# --- CORS -------------------------------------------------------------------------------------


async def test_cors_preflight_and_simple_requests(gateway: Any) -> None:
    origin = "https://casino.example"
    async with gateway(cors_origins=[origin], rate_limit_ip_rate=0.001, rate_limit_ip_burst=1) as gw:
        preflight = await gw.options("/v1/players/me", headers={
            "origin": origin, "access-control-request-method": "GET",
            "access-control-request-headers": "authorization, content-type"})
        refused = await gw.options("/v1/players/me", headers={
            "origin": "https://evil.example", "access-control-request-method": "GET"})
        simple = await gw.get("/v1/games/catalog", headers={"origin": origin})
        limited = await gw.get("/v1/games/catalog", headers={"origin": origin})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.status_code == 200  # preflights consumed no token of the address's only one
    assert simple.headers["access-control-allow-origin"] == origin
    # even a refusal is readable by the browser, and it may read Retry-After
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == origin
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()


# --- outages ----------------------------------------------------------------------------------


async def test_down_service_is_503_while_others_answer(gateway: Any) -> None:
    token = player_token()
    async with gateway(breaker_failure_threshold=2, breaker_reset_timeout=30) as gw:
        down = await gw.get("/v1/wallet/balance", headers=bearer(token))
        up = await gw.get("/v1/players/me", headers=bearer(token))
        await gw.get("/v1/wallet/balance", headers=bearer(token))
        opened = await gw.get("/v1/wallet/balance", headers=bearer(token))
        still_up = await gw.get("/v1/games/catalog")
    body = assert_problem(down, 503, "service-unavailable")
    assert body["service"] == "wallet"
    assert int(down.headers["retry-after"]) >= 1
    assert up.status_code == 200 and still_up.status_code == 200
    body = assert_problem(opened, 503, "service-unavailable")
    assert "circuit open" in body["detail"]
    assert 25 <= int(opened.headers["retry-after"]) <= 30


def circuit_open(exposition: str, target: str) -> float | None:
    """gameplane_circuit_open{service="gateway", target=...} as the gateway's /metrics shows it."""
    from prometheus_client.parser import text_string_to_metric_families
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gameplane_circuit_open" and sample.labels == {"service": "gateway",
                                                                               "target": target}:
                return sample.value
    return None


async def test_gateway_circuit_shows_in_gameplane_circuit_open(gateway: Any, upstreams: dict[str, Any]) -> None:
    port = free_port()
    eps = {**upstreams["endpoints"], "wallet": f"http://127.0.0.1:{port}"}
    token = player_token()
    async with gateway(endpoints=eps, breaker_failure_threshold=2, breaker_reset_timeout=30) as gw:
        before = (await gw.get("/metrics")).text
        await gw.get("/v1/wallet/x", headers=bearer(token))
        one_failure = (await gw.get("/metrics")).text
        await gw.get("/v1/wallet/x", headers=bearer(token))
        opened = (await gw.get("/metrics")).text
        async with served(upstream_app("wallet"), port=port):
            gw.gateway.breakers["wallet"].opened_at -= 30  # the reset timeout has passed: the probe goes through
            assert (await gw.get("/v1/wallet/x", headers=bearer(token))).status_code == 200
            closed = (await gw.get("/metrics")).text
    assert circuit_open(before, "wallet") == 0
    assert circuit_open(one_failure, "wallet") == 0  # one failure is under the threshold
    assert circuit_open(opened, "wallet") == 1
    assert circuit_open(closed, "wallet") == 0
    assert circuit_open(opened, "players") == 0  # the answering service's circuit stays closed


async def test_timeout_is_503_and_does_not_block_other_routes(gateway: Any) -> None:
    token = player_token()
    async with gateway(upstream_timeout=10, upstream_timeouts={"players": 0.5}) as gw:
        slow, fast = await asyncio.gather(gw.get("/v1/players/slow", headers=bearer(token)),
                                          gw.get("/v1/games/catalog"))
    body = assert_problem(slow, 503, "service-unavailable")
    assert body["service"] == "players" and "timed out" in body["detail"]
    assert fast.status_code == 200


async def test_upstream_errors_pass_through_without_opening_the_circuit(gateway: Any) -> None:
    token = player_token()
    async with gateway(breaker_failure_threshold=2) as gw:
        errors = [await gw.get("/v1/players/boom", headers=bearer(token)) for _ in range(3)]
        after = await gw.get("/v1/players/me", headers=bearer(token))
    assert [e.status_code for e in errors] == [500, 500, 500]
    assert after.status_code == 200


async def test_service_comes_back_after_the_circuit_resets(gateway: Any, upstreams: dict[str, Any]) -> None:
    port = free_port()
    eps = {**upstreams["endpoints"], "wallet": f"http://127.0.0.1:{port}"}
    token = player_token()
    async with gateway(endpoints=eps, breaker_failure_threshold=1, breaker_reset_timeout=30) as gw:
        assert (await gw.get("/v1/wallet/x", headers=bearer(token))).status_code == 503
        breaker = gw.gateway.breakers["wallet"]
        async with served(upstream_app("wallet"), port=port):
            still = await gw.get("/v1/wallet/x", headers=bearer(token))  # up again, but the circuit is open
            assert breaker.opened_at is not None
            breaker.opened_at -= 29  # 29 of the 30 s have passed: still open
            early = await gw.get("/v1/wallet/x", headers=bearer(token))
            assert "circuit open" in assert_problem(early, 503, "service-unavailable")["detail"]
            breaker.opened_at -= 1  # the reset timeout has passed: one probe goes through
            back = await gw.get("/v1/wallet/x", headers=bearer(token))
            after = await gw.get("/v1/wallet/x", headers=bearer(token))
    assert "circuit open" in assert_problem(still, 503, "service-unavailable")["detail"]
    assert back.status_code == 200 and back.json()["service"] == "wallet"
    assert after.status_code == 200 and breaker.opened_at is None  # closed again


async def test_endpoint_map_file_is_reread(gateway: Any, upstreams: dict[str, Any], tmp_path: Any) -> None:
    eps = upstreams["endpoints"]
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"players": eps["players"]}))
    async with gateway(endpoints={}, endpoints_file=path, endpoints_refresh_seconds=0.05) as gw:
        before = await gw.get("/v1/games/catalog")
        # players' keys fetched while it runs (the gateway keeps them when players goes away)
        assert (await gw.get("/v1/players/me", headers=bearer(player_token()))).status_code == 200
        path.write_text(json.dumps({"players": eps["players"], "games": eps["games"]}))
        for _ in range(100):
            after = await gw.get("/v1/games/catalog")
            if after.status_code == 200:
                break
            await asyncio.sleep(0.02)
        path.write_text(json.dumps({"games": eps["games"]}))
        for _ in range(100):
            gone = await gw.get("/v1/players/me", headers=bearer(player_token()))
            if gone.status_code == 503:
                break
            await asyncio.sleep(0.02)
        unknown = await gw.get("/v1/nosuchservice/x")
    # A service of the platform without an endpoint is named as not running, not hidden as a 404.
    assert assert_problem(before, 503, "service-unavailable")["service"] == "games"
    assert after.status_code == 200 and after.json()["service"] == "games"
    assert "players is not running" in assert_problem(gone, 503, "service-unavailable")["detail"]
    assert_problem(unknown, 404, "not-found")  # a path no service owns stays a 404


# --- responses --------------------------------------------------------------------------------


async def test_streamed_response_arrives_intact(gateway: Any) -> None:
    async with gateway() as gw:
        resp = await gw.get("/v1/players/big", headers=bearer(player_token()))
    assert resp.status_code == 200
    assert len(resp.content) == 64 * 16384
    assert resp.content[:16384] == b"A" * 16384 and resp.content[-1:] == bytes([65 + 63 % 26])


async def test_truncated_upstream_response_is_cut_short_for_the_client(gateway: Any, upstreams: dict[str, Any]
                                                                      ) -> None:
    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\npartial")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(half_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    eps = {**upstreams["endpoints"], "wallet": f"http://127.0.0.1:{port}"}
    try:
        async with gateway(endpoints=eps) as gw:
            with pytest.raises(httpx.TransportError):
                await gw.get("/v1/wallet/report", headers=bearer(player_token()))
            after = await gw.get("/v1/players/me", headers=bearer(player_token()))
    finally:
        server.close()
        await server.wait_closed()
    assert after.status_code == 200


async def test_upstream_cookies_are_not_shared_between_clients(gateway: Any) -> None:
    async with gateway() as gw:
        first = await gw.get("/v1/players/cookie", headers=bearer(player_token()))
        gw.cookies.clear()
        second = await gw.get("/v1/players/x", headers=bearer(player_token()))
    assert "upstream=" in first.headers["set-cookie"]
    assert headers_of(second.json(), "cookie") == []


# --- the gateway's own endpoints --------------------------------------------------------------


async def test_readiness_and_health(gateway: Any) -> None:
    async with gateway() as gw:
        ready = await gw.get("/readyz")
        live = await gw.get("/livez")
    assert ready.status_code == 200 and ready.json()["checks"] == {"routes": "ok"}
    assert live.status_code == 200


async def test_a_nats_url_from_the_platform_environment_is_ignored(gateway: Any) -> None:
    async with gateway(nats_url=f"nats://127.0.0.1:{free_port()}") as gw:  # nobody listens there
        ready = await gw.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"routes": "ok"}


async def test_not_ready_without_any_endpoint(gateway: Any) -> None:
    async with gateway(endpoints={}) as gw:
        ready = await gw.get("/readyz")
    assert_problem(ready, 503, "not-ready")


async def test_merged_openapi(gateway: Any) -> None:
    async with gateway() as gw:
        resp = await gw.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert "/v1/players/me" in doc["paths"] and "/v1/games/me" in doc["paths"]
    assert not any(p.startswith("/internal") for p in doc["paths"])
    assert doc["x-gameplane-unavailable"] == ["wallet"]
    assert "players.Me" in doc["components"]["schemas"] and "games.Me" in doc["components"]["schemas"]
    assert doc["paths"]["/v1/players/register"]["post"]["security"] == []
    assert doc["paths"]["/v1/players/me"]["get"]["security"] == [{"playerToken": []}]
    assert doc["paths"]["/v1/games/me"]["get"]["security"] == []  # reads under /v1/games are the catalog
    assert doc["paths"]["/v1/games/register"]["post"]["security"] == [{"playerToken": []}]
