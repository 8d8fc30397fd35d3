"""The outbox delivers exactly the committed events, also across a NATS restart; consumers
run a handler once per event id however often the event is delivered."""

import asyncio
import uuid

import nats
import pytest
from sqlalchemy import text

from gameplane.devtools.testing import stored_events
from gameplane.kit.app import Runtime
from gameplane.kit.consumer import Consumers, handle_once
from gameplane.kit.db import make_base
from gameplane.kit.events import Envelope, Event
from gameplane.kit.outbox import publish
from gameplane.kit.settings import ServiceSettings, settings_config


class KitPing(Event):
    event_type = "kittest.ping"
    run: str
    n: int


class KitSettings(ServiceSettings):
    model_config = settings_config("kittest")


async def _runtime(database_url: str, nats_url: str, consumers: Consumers | None = None) -> Runtime:
    rt = Runtime("kittest", KitSettings(database_url=database_url, nats_url=nats_url), consumers=consumers,
                 identity=False)  # it calls no other service
    base = make_base()
    async with rt.database.engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
        await conn.execute(text("CREATE TABLE IF NOT EXISTS seen (event_id uuid, n int)"))
    await rt.start()
    return rt


async def _published(nats_url: str, run: str, expect: int, timeout: float = 15) -> list[dict]:
    """Every message of this run in the stream (the stream de-duplicates by Nats-Msg-Id)."""
    return await stored_events(nats_url, "gameplane.kittest.ping", {"run": run}, expect, timeout)


async def _emit(rt: Runtime, run: str, numbers: range, *, commit: bool = True) -> None:
    for n in numbers:
        async with rt.database.sessions() as s:
            await s.begin()
            await publish(s, KitPing(run=run, n=n), producer="kittest")
            if commit:
                await s.commit()
            else:
                await s.rollback()


async def test_outbox_delivers_exactly_the_committed_events_across_a_nats_restart(new_database, isolated_nats):
    rt = await _runtime(new_database("outbox"), isolated_nats.url)
    run = uuid.uuid4().hex
    try:
        await asyncio.wait_for(rt.bus.ready.wait(), 10)
        await _emit(rt, run, range(0, 10))
        await _emit(rt, run, range(100, 105), commit=False)  # rolled back: must never appear

        isolated_nats.stop()
        await _emit(rt, run, range(10, 20))  # committed while NATS is down: kept in the outbox
        await asyncio.sleep(0.5)
        assert await rt.relay.pending() >= 10
        isolated_nats.start()

        found = await _published(isolated_nats.url, run, expect=20)
        numbers = sorted(e["data"]["n"] for e in found)
        assert numbers == list(range(20))
        assert len({e["id"] for e in found}) == 20
        for _ in range(50):
            if await rt.relay.pending() == 0:
                break
            await asyncio.sleep(0.1)
        assert await rt.relay.pending() == 0
    finally:
        await rt.stop()


async def test_the_relay_listens_again_after_the_database_dropped_its_connection(new_database, isolated_nats):
    """The relay is woken by NOTIFY; its poll is made an hour long here, so only a relay that opens a
    new connection (and LISTENs on it) after the database terminated every backend delivers the
    events committed afterwards. Each arrives once."""
    rt = await _runtime(new_database("relisten"), isolated_nats.url)
    run = uuid.uuid4().hex
    try:
        await asyncio.wait_for(rt.bus.ready.wait(), 10)
        rt.relay.idle_poll = 3600.0
        await _emit(rt, run, range(0, 5))
        await _published(isolated_nats.url, run, expect=5)  # delivered on NOTIFY
        await asyncio.sleep(0.3)  # the relay is asleep on its (hour-long) idle wait
        async with rt.database.engine.connect() as conn:
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).scalar_one()
        assert killed >= 1  # the relay's own connection among them
        await rt.database.engine.dispose()  # the pool's connections were terminated too
        await _emit(rt, run, range(5, 10))
        found = await _published(isolated_nats.url, run, expect=10)
        assert sorted(e["data"]["n"] for e in found) == list(range(10))
        assert len({e["id"] for e in found}) == 10
    finally:
        await rt.stop()


def _recording() -> tuple[Consumers, list[int]]:
    """Consumers whose KitPing handler records each event in `seen` (same transaction) and in the list."""
    consumers = Consumers()
    handled: list[int] = []

    @consumers.on(KitPing)
    async def on_ping(session, event: KitPing, env: Envelope) -> None:
        await session.execute(text("INSERT INTO seen VALUES (:id, :n)"), {"id": env.id, "n": event.n})
        handled.append(event.n)

    return consumers, handled


async def test_consumer_runs_a_handler_once_per_event_id(new_database, nats_server):
    consumers, handled = _recording()
    rt = await _runtime(new_database("consumer"), nats_server.url, consumers)
    run = uuid.uuid4().hex
    try:
        await asyncio.wait_for(rt.bus.ready.wait(), 10)
        env = Envelope.wrap(KitPing(run=run, n=7), "kittest")
        # The same event delivered twice (as after a redelivery past the de-dup window).
        for msg_id in ("a-" + run, "b-" + run):
            await rt.bus.js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
        for _ in range(100):
            async with rt.database.session() as s:
                rows = (await s.execute(text("SELECT count(*) FROM seen WHERE event_id = :id"),
                                        {"id": env.id})).scalar_one()
            if rows:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # give the second delivery time to (not) run
        async with rt.database.session() as s:
            assert (await s.execute(text("SELECT count(*) FROM seen WHERE event_id = :id"),
                                    {"id": env.id})).scalar_one() == 1
        assert handled.count(7) == 1
    finally:
        await rt.stop()


async def test_stopping_one_app_leaves_the_consumers_of_another_built_from_the_same_registrations(
        new_database, isolated_nats):
    """Services register their handlers on a module's Consumers; a process that builds two apps of
    one service (a test, a rolling-upgrade drill) must not stop the second's consumers with the first."""
    consumers, handled = _recording()
    first = await _runtime(new_database("first"), isolated_nats.url, consumers)
    second = await _runtime(new_database("second"), isolated_nats.url, consumers)
    try:
        await first.stop()
        env = Envelope.wrap(KitPing(run=uuid.uuid4().hex, n=11), "kittest")
        await second.bus.js.publish(env.subject, env.model_dump_json().encode())
        for _ in range(100):
            if 11 in handled:
                break
            await asyncio.sleep(0.1)
        assert handled == [11]  # the second app's consumer, still running, handled it
    finally:
        await second.stop()


class KitTick(Event):
    event_type = "kittest.tick"
    run: str
    n: int


async def test_a_batch_handler_gets_whole_batches_and_each_event_once(new_database, isolated_nats):
    consumers = Consumers()
    calls: list[list[int]] = []

    @consumers.on_batch(KitTick)
    async def on_ticks(session, items: list[tuple[KitTick, Envelope]]) -> None:
        for event, env in items:
            await session.execute(text("INSERT INTO seen VALUES (:id, :n)"), {"id": env.id, "n": event.n})
        calls.append([event.n for event, _ in items])

    run = uuid.uuid4().hex
    envs = [Envelope.wrap(KitTick(run=run, n=n), "kittest") for n in range(150)]
    nc = await nats.connect(isolated_nats.url)
    js = nc.jetstream()
    rt = await _runtime(new_database("batch"), isolated_nats.url)  # creates the stream; no consumer yet
    await asyncio.wait_for(rt.bus.ready.wait(), 10)
    await rt.stop()
    for env in envs + envs[:20]:  # the first 20 a second time, under other message ids
        await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    await nc.close()
    rt = await _runtime(new_database("batch2"), isolated_nats.url, consumers)
    try:
        for _ in range(100):
            if sum(len(c) for c in calls) >= 150:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the duplicates have had their chance to (not) run
        assert sorted(n for c in calls for n in c) == list(range(150))
        assert len(calls) < 150 / 10  # fetched in batches of up to 100, not one call per event
    finally:
        await rt.stop()


async def test_a_failing_handler_leaves_no_mark_so_the_event_is_retried(new_database, nats_server):
    rt = await _runtime(new_database("retry"), nats_server.url)
    env = Envelope.wrap(KitPing(run="r", n=1), "kittest")
    calls = 0

    async def flaky(session, event, envelope) -> None:
        nonlocal calls
        calls += 1
        await session.execute(text("INSERT INTO seen VALUES (:id, :n)"), {"id": envelope.id, "n": calls})
        if calls == 1:
            raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            await handle_once("kittest", rt.database, env, flaky, env.open())
        assert await handle_once("kittest", rt.database, env, flaky, env.open()) is True
        assert await handle_once("kittest", rt.database, env, flaky, env.open()) is False
        async with rt.database.session() as s:
            assert (await s.execute(text("SELECT array_agg(n) FROM seen WHERE event_id = :id"),
                                    {"id": env.id})).scalar_one() == [2]
    finally:
        await rt.stop()


async def test_a_failing_event_in_a_batch_delays_only_itself_and_garbage_is_dropped(new_database, isolated_nats):
    consumers = Consumers()
    attempts: dict[int, int] = {}

    @consumers.on(KitPing)
    async def on_ping(session, event: KitPing, env: Envelope) -> None:
        attempts[event.n] = attempts.get(event.n, 0) + 1
        if event.n == 3 and attempts[3] <= 2:  # fails in the batch and in its first retry alone
            raise RuntimeError("transient")
        await session.execute(text("INSERT INTO seen VALUES (:id, :n)"), {"id": env.id, "n": event.n})

    rt = await _runtime(new_database("batch"), isolated_nats.url)
    await rt.stop()  # tables exist now; publish everything before the consumer starts: one batch
    nc = await nats.connect(isolated_nats.url)
    js = nc.jetstream()
    from gameplane.kit.bus import ensure_stream

    await ensure_stream(js)
    await js.publish("gameplane.kittest.ping", b"not an envelope")
    run = uuid.uuid4().hex
    for n in range(6):
        env = Envelope.wrap(KitPing(run=run, n=n), "kittest")
        await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    await nc.close()

    rt = Runtime("kittest", KitSettings(database_url=rt.database.url, nats_url=isolated_nats.url),
                 consumers=consumers, identity=False)
    await rt.start()
    try:
        for _ in range(100):
            async with rt.database.session() as s:
                done = (await s.execute(text("SELECT array_agg(n ORDER BY n) FROM seen"))).scalar_one()
            if done == list(range(6)):
                break
            await asyncio.sleep(0.1)
        assert done == list(range(6))  # every event exactly once, the garbage did not stop the consumer
        # Event 3 rolled back its batch, failed again alone and succeeded on redelivery; the others
        # ran at most twice (in the rolled-back batch, then alone) and committed once.
        assert attempts[3] == 3
        assert all(1 <= attempts[n] <= 2 for n in (0, 1, 2, 4, 5)), attempts
    finally:
        await rt.stop()
