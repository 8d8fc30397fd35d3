"""One provider bet is one trace: the gateway, games' provider API, its sessions lookup, the wallet,
the wallet's database statement and the consumer of `wallet.bet_placed`, on real Postgres and NATS, recorded
through an in-memory exporter. The caller's traceparent is made here, so the trace id and the root's
parent come from outside the code under test."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gameplane.contracts.games import signed_headers
from gameplane.devtools.inprocess import LocalPlatform, launch, listener, local_platform, new_player, served
from gameplane.gateway.app import build_app as gateway_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit import telemetry

SECRET = "tracing-test-provider-secret"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    with telemetry.recording(InMemorySpanExporter()) as recorded:
        yield recorded  # type: ignore[misc]


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any, exporter: InMemorySpanExporter) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"tracing_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET) as p:
        p.extras["nats"] = nats_server.url
        p.extras["dbs"] = {name: url.rsplit("/", 1)[-1].split("?")[0] for name, url in dbs.items()}
        gateway = gateway_app(GatewaySettings(endpoints=p.urls, log_level="WARNING", rate_limit_ip_rate=0,
                                              rate_limit_player_rate=0, **p.identities.settings("gateway")))
        # What an OTLP endpoint switches on (the gateway's own span), without exporting anywhere.
        gateway.state.gateway.tracing = True
        sock = listener()
        try:
            async with served(gateway, sock) as url:
                p.urls["gateway"] = url
                yield p
        finally:
            sock.close()


def scope(span: ReadableSpan) -> str:
    return span.instrumentation_scope.name if span.instrumentation_scope else ""


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def orphans(spans: Sequence[ReadableSpan], root_parent: int | None) -> list[str]:
    """Spans of the trace whose parent is neither the caller's span nor another span of the trace."""
    ids = {s.context.span_id for s in spans}
    return [s.name for s in spans if parent_id(s) != root_parent and parent_id(s) not in ids]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    out = []
    while (pid := parent_id(span)) in by_id:
        span = by_id[pid]  # type: ignore[index]
        out.append(span)
    return out


def db_name(span: ReadableSpan) -> str | None:
    attrs = span.attributes or {}
    return attrs.get("db.namespace") or attrs.get("db.name")  # type: ignore[return-value]


def statement(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    return str(attrs.get("db.query.text") or attrs.get("db.statement") or "")


async def traced_bet(platform: LocalPlatform, exporter: InMemorySpanExporter, traceparent: str | None
                     ) -> httpx.Response:
    player = await new_player(platform, platform.extras["nats"], 1000)
    session = await launch(platform, player)
    payload = {"request_id": uuid.uuid4().hex, "token": session["token"], "transaction_id": uuid.uuid4().hex,
               "round_id": "R1", "game_id": "fruit-fives", "amount": 100, "currency": "EUR"}
    body = json.dumps(payload).encode()
    headers = signed_headers(SECRET, "/providers/rgs/bet", body)
    if traceparent:
        headers["traceparent"] = traceparent
    # the provider's callback comes in through the gateway, as in a deployment
    async with httpx.AsyncClient(base_url=platform.urls["gateway"], timeout=10) as http:
        return await http.post("/providers/rgs/bet", content=body, headers=headers)


async def trace_of(exporter: InMemorySpanExporter, trace_id: int, until: str) -> list[ReadableSpan]:
    """The trace's spans once one named `until*` is among them (the consumer runs after the answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if any(s.name.startswith(until) for s in spans) or loop.time() > deadline:
            return spans
        await asyncio.sleep(0.1)


async def test_a_provider_bet_is_one_whole_trace_from_games_to_the_event_consumer(
        platform: LocalPlatform, exporter: InMemorySpanExporter) -> None:
    trace_id, caller_span = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    resp = await traced_bet(platform, exporter, f"00-{trace_id:032x}-{caller_span:016x}-01")
    assert resp.status_code == 200, resp.text
    spans = await trace_of(exporter, trace_id, "consume wallet.bet_placed")
    by_id = {s.context.span_id: s for s in spans}
    assert orphans(spans, caller_span) == []

    # the gateway takes the provider's call, as a child of the caller's span; games serves it
    gateway = [s for s in spans if scope(s) == "gameplane.gateway"]
    assert len(gateway) == 1 and gateway[0].kind == SpanKind.SERVER and parent_id(gateway[0]) == caller_span
    games = [s for s in spans if scope(s) == "gameplane.games" and s.kind == SpanKind.SERVER]
    assert [s.name for s in games] == ["POST /providers/rgs/bet"]
    games_span = games[0]
    assert parent_id(games_span) == gateway[0].context.span_id

    # a fresh token: games asks sessions for the session, inside its own span
    lookups = [s for s in spans if scope(s) == "gameplane.sessions" and s.kind == SpanKind.SERVER
               and s.name.startswith("GET /internal/sessions/")]
    assert len(lookups) == 1 and games_span in ancestors(lookups[0], by_id)

    # the wallet's bet, under games' span
    wallet = [s for s in spans if scope(s) == "gameplane.wallet" and s.kind == SpanKind.SERVER]
    assert len(wallet) == 1, [s.name for s in wallet]
    wallet_span = wallet[0]
    assert wallet_span.name.startswith("POST /internal/wallet/")
    assert games_span in ancestors(wallet_span, by_id)

    # the statement that moved the money: on the wallet's database, under the wallet's span
    wallet_db = platform.extras["dbs"]["wallet"]
    statements = [s for s in spans if s.kind == SpanKind.CLIENT and db_name(s) == wallet_db]
    assert statements, "no database span of the wallet in the trace"
    assert all(wallet_span in ancestors(s, by_id) for s in statements)
    assert any("wallet_fast_batch" in statement(s) or "INSERT" in statement(s).upper() for s in statements)

    # the consumer of wallet.bet_placed (sessions'), reached through the NATS message's headers
    consumers = [s for s in spans
                 if scope(s) == "gameplane.consumer" and s.name.startswith("consume wallet.bet_placed")]
    assert consumers, "the bet_placed consumer is not in the bet's trace"
    for consume in consumers:
        assert wallet_span in ancestors(consume, by_id)
    sessions_db = platform.extras["dbs"]["sessions"]
    assert any(consumers[0] in ancestors(s, by_id) for s in spans if db_name(s) == sessions_db), \
        "the consumer's own statements are not under its span"


async def test_a_bet_without_a_caller_context_starts_its_own_trace(
        platform: LocalPlatform, exporter: InMemorySpanExporter) -> None:
    before = {s.context.trace_id for s in exporter.get_finished_spans()}
    resp = await traced_bet(platform, exporter, None)
    assert resp.status_code == 200, resp.text
    games = [s for s in exporter.get_finished_spans() if scope(s) == "gameplane.games"
             and s.name == "POST /providers/rgs/bet" and s.context.trace_id not in before]
    assert len(games) == 1 and games[0].parent is not None
    spans = await trace_of(exporter, games[0].context.trace_id, "consume wallet.bet_placed")
    roots = [s for s in spans if s.parent is None]
    assert [(scope(s), s.kind) for s in roots] == [("gameplane.gateway", SpanKind.SERVER)]
    assert {scope(s) for s in spans} >= {"gameplane.gateway", "gameplane.games", "gameplane.sessions",
                                        "gameplane.wallet", "gameplane.consumer"}
    assert orphans(spans, None) == [] and sum(1 for s in spans if s.parent is None) == 1


def test_the_chain_check_reports_a_broken_link() -> None:
    """Negative control of `orphans`: the same trace without its middle span has an orphan."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("control")
    with tracer.start_as_current_span("root"), tracer.start_as_current_span("middle"), \
            tracer.start_as_current_span("leaf"):
        pass
    spans = exporter.get_finished_spans()
    assert orphans(spans, None) == []
    assert orphans([s for s in spans if s.name != "middle"], None) == ["leaf"]
    assert orphans(spans, 12345) == ["root"]  # a root where the caller's span was expected
