"""Fast routes answer exactly as the FastAPI routes they shadow: auth, validation, problems,
request ids and metrics; everything else falls through to FastAPI."""

import gc
import json
import logging
import uuid

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from gameplane.devtools.identities import dev_identities
from gameplane.kit import fastroutes
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.auth import callers
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, json_reply
from gameplane.kit.keys import SigningKey
from gameplane.kit.problems import Problem
from gameplane.kit.settings import ServiceSettings, settings_config

THINGS = SigningKey.generate()
FROM_GAMES = callers("games")


class ThingsSettings(ServiceSettings):
    model_config = settings_config("things")


class Stake(BaseModel):
    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    round_id: uuid.UUID
    tags: list[str] = []


def settle(thing_id: str, stake: Stake, caller: str) -> dict[str, object]:
    """The shared 'domain function' both routes call."""
    if stake.currency == "XXX":
        raise Problem(409, "thing-conflict", "Conflicting thing", f"{thing_id} is settled",
                      headers={"Retry-After": "3"}, balance=7)
    if stake.currency == "BUG":
        raise RuntimeError("boom")
    return {"thing": thing_id, "amount": stake.amount, "caller": caller}


def make_app(fast: bool) -> FastAPI:
    rt = Runtime("things", ThingsSettings(nats_url=None, database_url=None, service_key=THINGS.pem(),
                                          public_keys=dev_identities().public_keys()))
    router = APIRouter(prefix="/internal/things")

    @router.post("/{thing_id}/stakes")
    async def stake(thing_id: str, body: Stake, caller: str = Depends(FROM_GAMES)) -> Response:
        return Response(json.dumps(settle(thing_id, body, caller)).encode(),
                        media_type="application/json")

    async def fast_stake(request: FastRequest) -> Reply:
        assert request.caller is not None
        result = settle(request.params["thing_id"], request.data, request.caller)
        return json_reply(json.dumps(result).encode())

    app = create_app(rt, [router], title="things", app_class=fastroutes.FastRoutesApp)
    if fast:
        fastroutes.install(app, rt, [FastRoute("POST", "/internal/things/{thing_id}/stakes", fast_stake,
                                               model=Stake, callers=FROM_GAMES.allowed)])
    return app


def token(audience: str = "things", caller: str = "games") -> dict[str, str]:
    return dev_identities().bearer(caller, audience)


@pytest.fixture
async def clients():
    fast_app, ref_app = make_app(True), make_app(False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fast_app), base_url="http://t") as fast, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=ref_app, raise_app_exceptions=False),
                              base_url="http://t") as ref:
        yield fast, ref


def good() -> dict[str, object]:
    return {"amount": 5, "currency": "EUR", "round_id": str(uuid.uuid4())}


def same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.content == b.content


def counted(status: str) -> float:
    return REGISTRY.get_sample_value("gameplane_http_requests_total", {
        "service": "things", "method": "POST", "route": "/internal/things/{thing_id}/stakes", "status": status}) or 0.0


async def test_answers_like_fastapi(clients):
    fast, ref = clients
    body = good()
    a = await fast.post("/internal/things/t-1/stakes", json=body, headers=token())
    b = await ref.post("/internal/things/t-1/stakes", json=body, headers=token())
    same(a, b)
    assert a.json() == {"thing": "t-1", "amount": 5, "caller": "games"}


async def test_auth_problems(clients):
    fast, ref = clients
    for headers, status in (({}, 401), ({"authorization": "Basic abc"}, 401), ({"authorization": "Bearer nope"}, 401),
                            (token("wallet"), 403), (token(caller="gateway"), 403)):
        a = await fast.post("/internal/things/t/stakes", json=good(), headers=headers)
        b = await ref.post("/internal/things/t/stakes", json=good(), headers=headers)
        same(a, b)
        assert a.status_code == status and a.headers["content-type"] == "application/problem+json"
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
    assert (await fast.post("/internal/things/t/stakes", json=good())).headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("content,headers", [
    (b'{"amount": 1.5, "currency": "EU", "round_id": "nope"}', {"content-type": "application/json"}),
    (b'{"currency": "EUR"}', {"content-type": "application/json"}),
    (b'{"amount": 1, "currency": "EUR", "round_id": "%s", "tags": [1]}' % str(uuid.uuid4()).encode(),
     {"content-type": "application/json; charset=utf-8"}),
    (b"[1, 2]", {"content-type": "application/json"}),
    (b"{not json", {"content-type": "application/json"}),
    (b"", {"content-type": "application/json"}),
    (b'{"currency": "\xff\xfe"}', {"content-type": "application/json"}),
    (json.dumps({"amount": 5, "currency": "EUR", "round_id": str(uuid.uuid4())}).encode("utf-16"),
     {"content-type": "application/json"}),
    (b'{"amount": 1}', {"content-type": "text/plain"}),
    (b'{"amount": 1}', {}),
    (b'{"amount": 1, "currency": "EUR", "round_id": "%s"}' % str(uuid.uuid4()).encode(),
     {"content-type": "application/vnd.things+json"}),
])
async def test_validation_identical_to_fastapi(clients, content, headers):
    fast, ref = clients
    a = await fast.post("/internal/things/t/stakes", content=content, headers={**headers, **token()})
    b = await ref.post("/internal/things/t/stakes", content=content, headers={**headers, **token()})
    same(a, b)
    if a.status_code == 422:
        assert a.json()["type"].endswith("/validation-error") and a.json()["errors"]


async def test_bad_json_is_422_before_auth_as_in_fastapi(clients):
    fast, ref = clients
    kw = {"content": b"{oops", "headers": {"content-type": "application/json"}}
    a = await fast.post("/internal/things/t/stakes", **kw)
    same(a, await ref.post("/internal/things/t/stakes", **kw))
    assert a.status_code == 422


async def test_problem_from_handler(clients):
    fast, ref = clients
    body = {**good(), "currency": "XXX"}
    a = await fast.post("/internal/things/t-9/stakes", json=body, headers=token())
    same(a, await ref.post("/internal/things/t-9/stakes", json=body, headers=token()))
    assert a.status_code == 409 and a.headers["retry-after"] == "3"
    assert a.json() == {"type": "https://gameplane.io/problems/thing-conflict", "title": "Conflicting thing",
                        "status": 409, "detail": "t-9 is settled", "instance": "/internal/things/t-9/stakes",
                        "balance": 7}


async def test_unexpected_error_is_500_problem_with_log(clients, caplog):
    fast, ref = clients
    body = {**good(), "currency": "BUG"}
    with caplog.at_level(logging.ERROR, logger="gameplane.problems"):
        a = await fast.post("/internal/things/t/stakes", json=body, headers=token())
    same(a, await ref.post("/internal/things/t/stakes", json=body, headers=token()))
    assert a.status_code == 500 and a.json()["type"].endswith("/internal-error")
    assert any("unhandled error on POST /internal/things/t/stakes" in r.getMessage() for r in caplog.records)


async def test_everything_else_falls_through_to_fastapi(clients):
    fast, ref = clients
    assert (await fast.get("/livez")).json() == {"status": "ok"}
    for method, path in (("GET", "/internal/things/t/stakes"), ("POST", "/internal/things/t/other"),
                         ("POST", "/internal/things/t/stakes/"), ("POST", "/nowhere")):
        a = await fast.request(method, path, json=good(), headers=token(), follow_redirects=False)
        b = await ref.request(method, path, json=good(), headers=token(), follow_redirects=False)
        assert a.status_code == b.status_code and a.content == b.content
    assert (await fast.get("/internal/things/t/stakes")).status_code == 405
    # The shadowed route is still documented.
    assert "/internal/things/{thing_id}/stakes" in (await fast.get("/openapi.json")).json()["paths"]


async def test_metrics_use_the_route_template(clients):
    fast, _ = clients
    ok, unauth = counted("200"), counted("401")
    await fast.post("/internal/things/a/stakes", json=good(), headers=token())
    await fast.post("/internal/things/b/stakes", json=good(), headers=token())
    await fast.post("/internal/things/c/stakes", json=good())
    assert counted("200") == ok + 2 and counted("401") == unauth + 1
    assert REGISTRY.get_sample_value("gameplane_http_requests_total", {
        "service": "things", "method": "POST", "route": "/internal/things/a/stakes", "status": "200"}) is None
    text = (await fast.get("/metrics")).text
    assert 'route="/internal/things/{thing_id}/stakes"' in text


async def test_request_id_echoed_or_made(clients):
    fast, _ = clients
    r = await fast.post("/internal/things/t/stakes", json=good(), headers={**token(), "x-request-id": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    r = await fast.post("/internal/things/t/stakes", json=good())
    assert r.status_code == 401 and len(r.headers["x-request-id"]) == 32


async def test_wallet_and_games_still_document_their_fast_routes():
    from gameplane.games.app import build_app as games_app
    from gameplane.games.settings import GamesSettings
    from gameplane.wallet.app import build_app as wallet_app
    from gameplane.wallet.settings import WalletSettings

    wallet = wallet_app(WalletSettings(nats_url=None, database_url=None))
    paths = wallet.openapi()["paths"]
    assert "/internal/wallet/bets" in paths and "/internal/wallet/wins" in paths
    games = games_app(GamesSettings(nats_url=None, database_url=None))
    provider_paths = {p for p in games.openapi()["paths"] if p.startswith("/providers/")}
    assert {f"/providers/{{provider}}/{op}" for op in ("authenticate", "balance", "bet", "win", "rollback",
                                                      "transaction/bet", "transaction/win")} <= provider_paths


async def test_a_running_app_keeps_its_startup_heap_out_of_the_collector_and_gives_it_back_at_stop():
    # A full collection walks every tracked object with the event loop stopped; what startup built
    # lives as long as the process, so it is frozen once started (and unfrozen at stop, for
    # processes like this one that start many apps).
    app = make_app(True)
    gc.unfreeze()  # an app another test left running in this process froze its heap
    assert gc.get_freeze_count() == 0  # negative control: nothing frozen before the app starts
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
        assert not walked(app.router)  # e.g. the routes, built at startup, are out of its reach
    assert gc.get_freeze_count() == 0
    assert walked(app.router)


def walked(obj: object) -> bool:
    """Whether the collector's generations (what a collection walks) hold `obj`."""
    return any(o is obj for o in gc.get_objects())
