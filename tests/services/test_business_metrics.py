"""Business metrics move with real requests, and only with the requests they count: provider
callbacks and the money they move (games), PSP call latency (payments), registrations (players).
The services run in this process, so the values are read from the process registry."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from psplib import running_psp

from gameplane.contracts.games import signed_headers
from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.devtools.testing import as_service, running
from gameplane.payments.adapters.base import PaymentRequest, PspConnection, PspError, build
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings

SECRET = "business-metrics-test-provider-secret"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- games --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"bizmetrics_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET) as p:
        p.extras["nats"] = nats_server.url
        yield p


async def provider_call(http: httpx.AsyncClient, op: str, token: str, request_id: str | None = None,
                        **fields: Any) -> httpx.Response:
    body = json.dumps({"request_id": request_id or uuid.uuid4().hex, "token": token, **fields}).encode()
    return await http.post(f"/providers/rgs/{op}", content=body,
                           headers=signed_headers(SECRET, f"/providers/rgs/{op}", body))


async def test_provider_calls_count_each_movement_once_with_its_amount(platform: LocalPlatform) -> None:
    labels = {"provider": "rgs", "game": "fruit-fives", "currency": "EUR"}
    rounds = {k: value("gameplane_games_rounds_total", **labels, kind=k) for k in ("bet", "win", "rollback")}
    amounts = {k: value("gameplane_games_amount_minor_total", **labels, kind=k) for k in ("bet", "win", "rollback")}
    bet_calls = value("gameplane_games_provider_callback_seconds_count", provider="rgs", action="bet")
    other_calls = value("gameplane_games_provider_callback_seconds_count", provider="rgs", action="other")

    player = await new_player(platform, platform.extras["nats"], 1000)
    token = (await launch(platform, player))["token"]
    async with httpx.AsyncClient(base_url=platform.urls["games"], timeout=10) as http:
        bet = dict(transaction_id=uuid.uuid4().hex, round_id="R1", game_id="fruit-fives", amount=100, currency="EUR")
        first = await provider_call(http, "bet", token, request_id="bet-1-" + uuid.uuid4().hex, **bet)
        assert first.status_code == 200, first.text
        # the provider's retry of the same bet: answered again, moves nothing, counted nothing
        assert (await provider_call(http, "bet", token, **bet)).status_code == 200
        win = await provider_call(http, "win", token, transaction_id=uuid.uuid4().hex, round_id="R1",
                                  game_id="fruit-fives", amount=250, currency="EUR", round_closed=True)
        assert win.status_code == 200, win.text
        second = dict(transaction_id=uuid.uuid4().hex, round_id="R2", game_id="fruit-fives", amount=40, currency="EUR")
        assert (await provider_call(http, "bet", token, **second)).status_code == 200
        rollback = await provider_call(http, "rollback", token, transaction_id=uuid.uuid4().hex,
                                       bet_transaction_id=second["transaction_id"])
        assert rollback.status_code == 200, rollback.text
        refused = await provider_call(http, "bet", token, transaction_id=uuid.uuid4().hex, round_id="R3",
                                      game_id="fruit-fives", amount=5000, currency="EUR")
        assert refused.status_code == 402  # insufficient funds: no movement
        assert (await provider_call(http, "no-such-operation", token)).status_code >= 400
        assert (await http.post("/providers/nobody/bet", content=b"{}")).status_code == 404

    assert value("gameplane_games_rounds_total", **labels, kind="bet") - rounds["bet"] == 2
    assert value("gameplane_games_rounds_total", **labels, kind="win") - rounds["win"] == 1
    assert value("gameplane_games_rounds_total", **labels, kind="rollback") - rounds["rollback"] == 1
    assert value("gameplane_games_amount_minor_total", **labels, kind="bet") - amounts["bet"] == 140
    assert value("gameplane_games_amount_minor_total", **labels, kind="win") - amounts["win"] == 250
    assert value("gameplane_games_amount_minor_total", **labels, kind="rollback") - amounts["rollback"] == 40
    # every bet call is timed, the refused and the replayed ones too; an unknown path is `other`
    assert value("gameplane_games_provider_callback_seconds_count", provider="rgs", action="bet") - bet_calls == 4
    assert value("gameplane_games_provider_callback_seconds_count", provider="rgs", action="other") - other_calls == 1
    # a provider that is not configured mints no label value
    assert REGISTRY.get_sample_value("gameplane_games_provider_callback_seconds_count",
                                     {"provider": "nobody", "action": "bet"}) is None


# ---- payments -----------------------------------------------------------------------------------

def _payment() -> PaymentRequest:
    return PaymentRequest(reference=str(uuid.uuid4()), player_id=str(uuid.uuid4()), amount=2500, currency="EUR",
                          return_url="https://casino.example/return",
                          expires_at=datetime.now(UTC) + timedelta(minutes=15))


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_psp_calls_are_timed_per_psp_and_operation_answered_or_not(psp: str) -> None:
    count = "gameplane_payments_psp_call_seconds_count"
    before = value(count, psp=psp, operation="create_payment")
    async with running_psp() as sim:
        adapter = build(psp, sim.connection(psp))
        try:
            await adapter.create_payment(_payment())
        finally:
            await adapter.aclose()
    assert value(count, psp=psp, operation="create_payment") == before + 1
    assert value("gameplane_payments_psp_call_seconds_sum", psp=psp, operation="create_payment") > 0

    # a PSP that does not answer: the failed call is observed too (its latency is what hurts)
    conn = PspConnection(base_url="http://127.0.0.1:9", secret="s" * 16, api_key="k", timeout_seconds=1)
    down = build(psp, conn)
    try:
        with pytest.raises(PspError):
            await down.create_payment(_payment())
    finally:
        await down.aclose()
    assert value(count, psp=psp, operation="create_payment") == before + 2


# ---- players ------------------------------------------------------------------------------------

async def test_registrations_are_counted_by_outcome_in_the_jurisdiction(service_settings) -> None:
    settings = service_settings(PlayersSettings, jurisdiction="mga", argon2_time_cost=1, argon2_memory_kib=8192,
                                argon2_parallelism=1)
    outcomes = ("registered", "underage", "email-taken", "weak-password")
    before = {o: value("gameplane_players_registrations_total", jurisdiction="mga", outcome=o) for o in outcomes}
    app = build_players(settings)
    async with running(app) as client:
        def body(**over: Any) -> dict[str, Any]:
            return {"email": f"m-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple",
                    "date_of_birth": "1990-04-01", "country": "MT", "currency": "EUR", **over}

        headers = as_service(app, "gateway")
        taken = body()
        assert (await client.post("/v1/players/register", json=taken, headers=headers)).status_code == 201
        assert (await client.post("/v1/players/register", json=taken, headers=headers)).status_code == 409
        minor = str(date.today().replace(year=date.today().year - 10))
        assert (await client.post("/v1/players/register", json=body(date_of_birth=minor),
                                  headers=headers)).status_code == 422
        assert (await client.post("/v1/players/register", json=body(password="password"),
                                  headers=headers)).status_code == 422
        # a request without the gateway's token is no registration attempt
        assert (await client.post("/v1/players/register", json=body())).status_code == 401
    after = {o: value("gameplane_players_registrations_total", jurisdiction="mga", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "registered": 1, "underage": 1, "email-taken": 1, "weak-password": 1}
