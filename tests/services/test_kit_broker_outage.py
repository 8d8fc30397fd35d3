"""A service rides out a NATS outage: it stays Ready while the outbox buffers (the backlog shows
in metrics), and a server that comes back without its store gets the stream and the durable
consumers back without any restart of the service."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text

from gameplane.kit.app import Runtime
from gameplane.kit.consumer import Consumers
from gameplane.kit.db import make_base
from gameplane.kit.events import STREAM_NAME, Envelope, Event
from gameplane.kit.outbox import publish
from gameplane.kit.settings import ServiceSettings, settings_config


class OutagePing(Event):
    event_type = "outagetest.ping"
    run: str
    n: int


class OutageSettings(ServiceSettings):
    model_config = settings_config("outagetest")


async def _runtime(database_url: str, nats_url: str, consumers: Consumers | None = None) -> Runtime:
    rt = Runtime("outagetest", OutageSettings(database_url=database_url, nats_url=nats_url), consumers=consumers,
                 identity=False)  # calls no other service
    async with rt.database.engine.begin() as conn:
        await conn.run_sync(make_base().metadata.create_all)
        await conn.execute(text("CREATE TABLE IF NOT EXISTS seen (event_id uuid, n int)"))
    await rt.start()
    await asyncio.wait_for(rt.bus.ready.wait(), 10)  # type: ignore[union-attr]
    return rt


async def _emit(rt: Runtime, run: str, numbers: range) -> None:
    for n in numbers:
        async with rt.database.transaction() as s:
            await publish(s, OutagePing(run=run, n=n), producer="outagetest")


async def _until(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


def _recording_consumers() -> Consumers:
    consumers = Consumers()

    @consumers.on(OutagePing)
    async def on_ping(session: Any, event: OutagePing, env: Envelope) -> None:
        await session.execute(text("INSERT INTO seen VALUES (:id, :n)"), {"id": env.id, "n": event.n})

    return consumers


async def _seen(rt: Runtime) -> list[int]:
    async with rt.database.session() as s:
        return sorted((await s.execute(text("SELECT n FROM seen"))).scalars().all())


async def test_readiness_stays_up_while_nats_is_down_and_the_backlog_shows_then_drains(new_database, isolated_nats):
    rt = await _runtime(new_database("outage"), isolated_nats.url, _recording_consumers())
    run = uuid.uuid4().hex
    try:
        await _emit(rt, run, range(0, 5))
        assert await _until(lambda: _count(rt, 5))
        isolated_nats.stop()
        await _until(lambda: _false(rt.bus.connected))  # type: ignore[union-attr]
        await _emit(rt, run, range(5, 25))  # committed while the broker is down
        await asyncio.sleep(1.5)  # the relay has tried (and failed) meanwhile

        checks = await rt.readiness()
        assert checks == {"database": "ok"}  # nothing failing: the Pod keeps its endpoints
        assert rt.notes()["nats"].startswith("not connected")
        assert await rt.relay.pending() == 20  # type: ignore[union-attr]
        labels = {"service": "outagetest"}
        assert REGISTRY.get_sample_value("gameplane_outbox_pending", labels) == 20
        assert REGISTRY.get_sample_value("gameplane_outbox_oldest_age_seconds", labels) >= 1.0

        isolated_nats.start()
        assert await _until(lambda: _count(rt, 25)), "the backlog did not reach the consumer"
        assert await rt.relay.pending() == 0  # type: ignore[union-attr]
        assert REGISTRY.get_sample_value("gameplane_outbox_oldest_age_seconds", labels) == 0
        assert await _seen(rt) == list(range(25))  # each once
        assert rt.notes()["nats"] == "ok"
    finally:
        await rt.stop()


async def test_a_server_that_lost_its_store_gets_the_stream_and_consumers_back(new_database, isolated_nats):
    rt = await _runtime(new_database("lost"), isolated_nats.url, _recording_consumers())
    run = uuid.uuid4().hex
    try:
        await _emit(rt, run, range(0, 3))
        assert await _until(lambda: _count(rt, 3))
        ensures = rt.bus.stream_ensures  # type: ignore[union-attr]

        isolated_nats.stop()
        shutil.rmtree(isolated_nats.data_dir / "jetstream")  # an emptyDir after a Pod restart
        isolated_nats.start()
        # The service, untouched, re-creates the stream on reconnect ...
        assert await _until(lambda: _stream_exists(rt))
        assert rt.bus.stream_ensures > ensures  # type: ignore[union-attr]
        # ... and its durable consumer, so events committed afterwards are consumed.
        await _emit(rt, run, range(3, 8))
        assert await _until(lambda: _count(rt, 8)), f"consumed only {await _seen(rt)}"
        assert await _seen(rt) == list(range(8))
    finally:
        await rt.stop()


async def _count(rt: Runtime, n: int) -> bool:
    return len(await _seen(rt)) >= n


async def _false(value: bool) -> bool:
    return not value


async def _stream_exists(rt: Runtime) -> bool:
    try:
        await rt.bus.js.stream_info(STREAM_NAME)  # type: ignore[union-attr]
        return True
    except Exception:
        return False
