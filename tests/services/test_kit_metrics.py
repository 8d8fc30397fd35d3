"""The kit's metrics, in every built service without service code: RED per route, database pool
use and statement duration, outbox backlog, each durable consumer's pending events.

The families each service must export are written here, per service, as literals: a new service
in the catalogue fails `test_every_built_service_is_listed` until it gets a row, and the row is
checked against what the service really exports when it runs."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from gameplane import catalog
from gameplane.devtools.testing import running
from gameplane.kit.app import Runtime
from gameplane.kit.consumer import Consumers
from gameplane.kit.db import Database, make_base
from gameplane.kit.events import Envelope, Event
from gameplane.kit.settings import ServiceSettings, settings_config

HTTP = {"gameplane_http_requests_total", "gameplane_http_request_duration_seconds_bucket"}
DB = {"gameplane_db_pool_connections", "gameplane_db_pool_size", "gameplane_db_query_duration_seconds_bucket"}
OUTBOX = {"gameplane_outbox_pending", "gameplane_outbox_oldest_age_seconds"}
CONSUMER = {"gameplane_consumer_pending"}

# What each built service exports, by what it has: a database, an outbox it publishes through,
# durable consumers. Simulators are services too (the platform scrapes them in development).
EXPECTED: dict[str, set[str]] = {
    "gateway": HTTP,
    "players": HTTP | DB | OUTBOX,
    "wallet": HTTP | DB | OUTBOX | CONSUMER,
    "games": HTTP | DB | OUTBOX,
    "sessions": HTTP | DB | OUTBOX | CONSUMER,
    "payments": HTTP | DB | OUTBOX | CONSUMER,
    "bonus": HTTP | DB | OUTBOX | CONSUMER,
    "risk": HTTP | DB | OUTBOX | CONSUMER,
    "affiliates": HTTP | DB | OUTBOX | CONSUMER,
    "analytics": HTTP | DB | CONSUMER,
    "web": HTTP,  # the sites of the client layer: pages only, no database, no events
    "backoffice": HTTP,
    "rgs": HTTP,
    "psp": HTTP,
}

# settings a service cannot start without, beyond database and NATS
EXTRA_SETTINGS: dict[str, dict[str, Any]] = {
    "rgs": {"platform_url": "http://127.0.0.1:9", "provider_secret": "kit-metrics-test-" + "k" * 32},
    "psp": {"simpsp_secret": "kit-metrics-test-" + "s" * 16, "simpsp_api_key": "kit-metrics-key"},
    "web": {"endpoints": {"gateway": "http://127.0.0.1:9"}},
}


def exported(scrape: str, service: str) -> set[str]:
    """Names of the samples in a /metrics exposition that carry `service="<service>"`."""
    return {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples
            if sample.labels.get("service") == service}


def missing(scrape: str, service: str) -> set[str]:
    return EXPECTED[service] - exported(scrape, service)


def _settings_class(service: catalog.Service) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service.module}.settings")
    found = [c for _, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, ServiceSettings) and c.__module__ == module.__name__]
    assert len(found) == 1, f"{module.__name__}: expected one settings class, found {found}"
    return found[0]


def test_every_built_service_is_listed():
    assert set(EXPECTED) == set(catalog.BUILT), "a built service without a row here: add what it must export"
    for name in catalog.BUILT:
        if catalog.get(name).database:
            assert DB <= EXPECTED[name], f"{name} owns a database: its row must include the pool and query metrics"


@pytest.mark.parametrize("name", catalog.BUILT)
async def test_a_built_service_exports_the_kit_metrics(name, service_settings, nats_server):
    service = catalog.get(name)
    overrides = dict(EXTRA_SETTINGS.get(name, {}))
    cls = _settings_class(service)
    settings = service_settings(cls, **overrides) if service.database else cls(nats_url=nats_server.url, **overrides)
    app: FastAPI = importlib.import_module(f"{service.module}.app").build_app(settings)
    rt: Runtime = app.state.runtime
    rt.consumers.pending_every = 0.2
    async with running(app) as client:
        # What the runtime really has may not be more than its row says (the row cannot under-claim).
        if rt.consumers:
            assert CONSUMER <= EXPECTED[name], f"{name} runs consumers"
        if rt.relay is not None:
            assert OUTBOX <= EXPECTED[name], f"{name} publishes through an outbox"
        await client.get("/openapi.json")  # one request through the RED middleware
        for _ in range(100):
            scrape = (await client.get("/metrics")).text
            if not missing(scrape, name):
                break
            await asyncio.sleep(0.1)
        assert not missing(scrape, name), f"{name} lacks kit metrics: {sorted(missing(scrape, name))}"
        if service.database:
            counts = [s.value for f in text_string_to_metric_families(scrape) for s in f.samples
                      if s.name == "gameplane_db_query_duration_seconds_count" and s.labels["service"] == name]
            assert counts and counts[0] > 0, "the start's statements (readiness ping, migrations) were timed"


async def test_an_app_without_the_kit_is_reported_missing_every_family():
    # Negative control: a bare app's own /metrics (the same process registry) has no sample of
    # its service, and the check reports every family missing.
    bare = FastAPI()

    @bare.get("/metrics")
    async def scrape() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async with running(bare) as client:
        await client.get("/metrics")
        body = (await client.get("/metrics")).text
    assert "gameplane_http_requests_total" in body  # the registry is there, with other services' samples
    EXPECTED["bare-under-test"] = HTTP | DB
    try:
        assert missing(body, "bare-under-test") == HTTP | DB
    finally:
        del EXPECTED["bare-under-test"]


def _value(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_statements_of_both_pools_are_timed_and_pool_use_is_counted(new_database):
    service = f"kitdb-{uuid.uuid4().hex[:8]}"  # a label of this test alone
    db = Database(new_database("kitdb"), pool_size=3, service=service)
    try:
        count = "gameplane_db_query_duration_seconds_count"
        async with db.session() as s:
            await s.execute(text("SELECT pg_sleep(0.03)"))
        assert _value(count, service=service) == 1
        # at least the sleep, at most the 5 s bucket: a real duration, not a constant
        assert 0.03 <= _value("gameplane_db_query_duration_seconds_sum", service=service) < 5

        pool = await db.open_pool(2)
        await pool.fetchval("SELECT 1")
        await asyncio.sleep(0)  # asyncpg reports a statement to its logger on the next loop turn
        assert _value(count, service=service) == 2

        async with db.engine.connect() as conn, pool.acquire():
            await conn.execute(text("SELECT 1"))
            db.observe_pool()
            assert _value("gameplane_db_pool_connections", service=service, state="in_use") == 2
        db.observe_pool()
        assert _value("gameplane_db_pool_connections", service=service, state="in_use") == 0
        # the engine keeps its one connection, the hot pool its min_size of two
        assert _value("gameplane_db_pool_connections", service=service, state="idle") == 3
        assert _value("gameplane_db_pool_size", service=service) == 3 + 2
    finally:
        await db.dispose()


async def test_a_database_without_a_service_name_measures_nothing(new_database):
    # Tools (migrations, the staff bootstrap) open one: their statements are no service's.
    before = _all_samples("gameplane_db_query_duration_seconds_count")
    db = Database(new_database("kitdb"), pool_size=1)
    try:
        await db.ping()
        db.observe_pool()
    finally:
        await db.dispose()
    assert _all_samples("gameplane_db_query_duration_seconds_count") == before


class KitHeld(Event):
    event_type = "kitmetrics.held"
    n: int


class KitMetricsSettings(ServiceSettings):
    model_config = settings_config("kitmetrics")


async def test_consumer_pending_counts_unacknowledged_events_and_falls_when_they_are_handled(
        new_database, nats_server):
    consumers = Consumers()
    consumers.pending_every = 0.2
    release = asyncio.Event()

    @consumers.on_batch(KitHeld, batch=10)
    async def held(session, items) -> None:
        await release.wait()  # delivered, not acknowledged: pending until released

    service = f"kitmetrics{uuid.uuid4().hex[:8]}"
    rt = Runtime(service, KitMetricsSettings(database_url=new_database("kitcons"), nats_url=nats_server.url),
                 consumers=consumers, identity=False)
    async with rt.database.engine.begin() as conn:
        await conn.run_sync(make_base().metadata.create_all)
    await rt.start()
    labels = {"service": service, "stream": "GAMEPLANE", "consumer": f"{service}-kitmetrics_held"}
    try:
        assert rt.bus is not None
        await asyncio.wait_for(rt.bus.ready.wait(), 10)
        for _ in range(100):  # the first reading, once the durable exists
            if _reported(labels):
                break
            await asyncio.sleep(0.1)
        base = _value("gameplane_consumer_pending", **labels)
        for n in range(5):
            env = Envelope.wrap(KitHeld(n=n), "kitmetrics")
            await rt.bus.js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
        for _ in range(100):
            if _value("gameplane_consumer_pending", **labels) >= base + 5:
                break
            await asyncio.sleep(0.1)
        assert _value("gameplane_consumer_pending", **labels) >= base + 5
        release.set()
        for _ in range(100):
            if _value("gameplane_consumer_pending", **labels) == 0:
                break
            await asyncio.sleep(0.1)
        assert _value("gameplane_consumer_pending", **labels) == 0
    finally:
        release.set()
        await rt.stop()


def _all_samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client import REGISTRY

    return {tuple(sorted(s.labels.items())): s.value for f in REGISTRY.collect() for s in f.samples if s.name == name}


def _reported(labels: dict[str, str]) -> bool:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("gameplane_consumer_pending", labels) is not None
