"""Idempotent JetStream consumers: a handler's effects and the processed-event mark commit together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError, NotFoundError
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.kit import metrics, telemetry
from gameplane.kit.bus import Bus
from gameplane.kit.db import Database
from gameplane.kit.events import STREAM_NAME, Envelope, Event
from gameplane.kit.faults import Faults

log = logging.getLogger("gameplane.consumer")

Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]
# all fresh events of one fetched batch at once, in stream order, inside the batch's transaction
BatchHandler = Callable[[AsyncSession, list[tuple[Any, Envelope]]], Awaitable[None]]

_MARK = text("INSERT INTO processed_events (event_id, consumer) VALUES (:id, :c) "
             "ON CONFLICT DO NOTHING RETURNING event_id")
_MARK_MANY = text("INSERT INTO processed_events (event_id, consumer) SELECT unnest(CAST(:ids AS uuid[])), :c "
                  "ON CONFLICT DO NOTHING RETURNING event_id")


@dataclass
class _Registration:
    event: type[Event]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    batch: int = 100  # messages fetched at once

    @property
    def durable(self) -> str:
        return self.event.event_type.replace(".", "_")

    async def run(self, s: AsyncSession, items: list[tuple[Any, Envelope, Any]]) -> None:
        """`items`: (event, envelope, trace context) of events not processed before."""
        tracer = telemetry.tracer("gameplane.consumer")
        if self.batch_handler is not None:
            # One span for the batch: a child of the first event's trace, linked to the others'.
            links = [trace.Link(span.get_span_context()) for _, _, ctx in items[1:]
                     if (span := trace.get_current_span(ctx)).get_span_context().is_valid]
            with tracer.start_as_current_span(f"consume {self.event.event_type} x{len(items)}", context=items[0][2],
                                              links=links):
                await self.batch_handler(s, [(event, env) for event, env, _ in items])
            return
        assert self.handler is not None
        for event, env, ctx in items:
            with tracer.start_as_current_span(f"consume {env.type}", context=ctx):
                await self.handler(s, event, env)


class Consumers:
    """Register handlers with `@consumers.on(SomeEvent)`; the app runtime starts them.

    Beside them one task reads each durable consumer's backlog from the server every
    `pending_every` seconds into `gameplane_consumer_pending`: off the fetch loop, so a stuck
    handler still shows as a growing backlog, and one round trip per consumer per period."""

    pending_every = 5.0

    def __init__(self) -> None:
        self._handlers: list[_Registration] = []

    def on(self, event: type[Event]) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._handlers.append(_Registration(event, handler=fn))
            return fn
        return register

    def on_batch(self, event: type[Event], batch: int = 100) -> Callable[[BatchHandler], BatchHandler]:
        """For high-volume events: the handler gets every fresh event of a fetched batch (up to
        `batch`) in one call, so it can write them with one statement instead of one per event."""
        def register(fn: BatchHandler) -> BatchHandler:
            self._handlers.append(_Registration(event, batch_handler=fn, batch=batch))
            return fn
        return register

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def start(self, service: str, db: Database, bus: Bus, faults: Faults | None = None) -> Running:
        """The consumer tasks of one app. The registrations are often a module's, shared by every app
        a process builds (tests build several): the tasks belong to the caller, so stopping one app
        never stops another's consumers."""
        tasks = [asyncio.create_task(_consume(service, db, bus, reg, faults), name=f"{service}-consume-{reg.durable}")
                 for reg in self._handlers]
        if self._handlers:
            durables = [f"{service}-{reg.durable}" for reg in self._handlers]
            tasks.append(asyncio.create_task(
                _watch_pending(service, bus, durables, self.pending_every), name=f"{service}-consumer-pending"))
        return Running(tasks)


@dataclass
class Running:
    """Consumer tasks started by `Consumers.start`."""

    tasks: list[asyncio.Task[None]]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()


async def handle_once(service: str, db: Database, env: Envelope, handler: _Registration | Handler, event: Event,
                      ctx: Any = None) -> bool:
    """Run the handler unless this consumer already processed the event. True when it ran."""
    reg = handler if isinstance(handler, _Registration) else _Registration(type(event), handler=handler)
    consumer = f"{service}:{env.type}"
    async with db.transaction() as s:
        fresh = (await s.execute(_MARK, {"id": env.id, "c": consumer})).first()
        if fresh is None:
            return False
        await reg.run(s, [(event, env, ctx)])
    return True


async def _consume(service: str, db: Database, bus: Bus, reg: _Registration, faults: Faults | None = None) -> None:
    await bus.ready.wait()
    durable = f"{service}-{reg.durable}"
    while True:
        sub = await _subscribe(bus, reg, durable)
        try:
            await _fetch_loop(service, db, sub, durable, reg, faults, bus)
        except _Resubscribe:
            log.warning("consumer %s is gone on the server (a store lost?); creating it again", durable)
        finally:
            # a pull subscription left behind makes the connection's drain wait its full timeout (30 s)
            try:
                await asyncio.wait_for(sub.unsubscribe(), timeout=2)
            except (Exception, asyncio.CancelledError):
                log.warning("unsubscribe of %s did not complete", durable)


async def _watch_pending(service: str, bus: Bus, durables: list[str], every: float) -> None:
    """Keep `gameplane_consumer_pending` current. While the server cannot answer the last value
    stays (a broker outage shows as `up`/NATS alerts, not as a backlog dropping to zero)."""
    await bus.ready.wait()
    gauges = {d: metrics.CONSUMER_PENDING.labels(service, STREAM_NAME, d) for d in durables}
    while True:
        if _cancel_requested():
            raise asyncio.CancelledError()
        for durable, gauge in gauges.items():
            try:
                info = await asyncio.wait_for(bus.js.consumer_info(STREAM_NAME, durable), timeout=every)
                gauge.set((info.num_pending or 0) + (info.num_ack_pending or 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not created yet (its loop subscribes), or NATS away
                log.debug("consumer info of %s: %s", durable, exc)
        await asyncio.sleep(every)


async def _subscribe(bus: Bus, reg: _Registration, durable: str) -> Any:
    while True:
        try:
            return await bus.js.pull_subscribe(
                reg.event.subject(), durable=durable,
                config=ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                      deliver_policy=DeliverPolicy.ALL, max_deliver=-1, ack_wait=30))
        except Exception as exc:
            log.warning("subscribe %s failed: %s", durable, exc)
            await asyncio.sleep(1)


class _Resubscribe(Exception):
    """The durable consumer no longer exists on the server: subscribe (and so create it) again."""


async def handle_batch(service: str, db: Database, items: list[tuple[Envelope, Event, Any]],
                       reg: _Registration) -> list[bool]:
    """Every event of a fetched batch in one transaction: one mark statement and one commit instead
    of one each per event. If any handler fails the whole batch rolls back, and the caller retries
    the events one by one so that only the failing event is redelivered. `items` holds (envelope,
    event, trace context); the answer says, per item, whether it ran (False: processed before)."""
    consumer = f"{service}:{items[0][0].type}"
    async with db.transaction() as s:
        fresh = set((await s.execute(_MARK_MANY, {"ids": [env.id for env, _, _ in items], "c": consumer}))
                    .scalars().all())
        ran: list[bool] = []
        todo: list[tuple[Any, Envelope, Any]] = []
        for env, event, ctx in items:
            ran.append(env.id in fresh)
            if env.id in fresh:
                fresh.discard(env.id)  # the same event twice in one batch runs once
                todo.append((event, env, ctx))
        if todo:
            await reg.run(s, todo)
    return ran


def _cancel_requested() -> bool:
    """Python 3.11's asyncio.wait_for (inside nats' fetch) can swallow a cancellation that arrives
    as its timeout fires; the task then stays "cancelling" while the loop goes on, and a shutdown
    waiting for the consumer hangs. Checked on every turn of the loop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _fetch_loop(service: str, db: Database, sub: Any, durable: str, reg: _Registration,
                      faults: Faults | None = None, bus: Bus | None = None) -> None:
    seen = bus.epoch if bus is not None else 0
    while True:
        if _cancel_requested():
            raise asyncio.CancelledError()
        if bus is not None and bus.epoch != seen and bus.connected:
            # After a reconnect: a fetch from a consumer the server no longer has just times out
            # ("no responders" counts as temporary), so ask the server whether it still exists.
            try:
                await bus.js.consumer_info(STREAM_NAME, durable)
                seen = bus.epoch
            except NotFoundError as exc:
                raise _Resubscribe() from exc
            except Exception as exc:
                log.warning("consumer %s: info after reconnect failed: %s", durable, exc)
                await asyncio.sleep(0.5)
                continue
        try:
            msgs = await sub.fetch(batch=reg.batch, timeout=1)
        except (FetchTimeoutError, TimeoutError):
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("fetch on %s failed: %s", durable, exc)
            await asyncio.sleep(0.5)
            continue
        items: list[tuple[Envelope, Event, Any]] = []
        good = []
        for msg in msgs:
            if faults is not None and faults.hit("drop-events"):
                # The drill: neither handled nor acknowledged; JetStream redelivers it after ack_wait.
                metrics.EVENTS_CONSUMED.labels(service, reg.event.event_type, "dropped").inc()
                continue
            try:
                env = Envelope.model_validate_json(msg.data)
                items.append((env, env.open(), telemetry.extract(dict(msg.headers or {}))))
                good.append(msg)
            except Exception:
                # Unreadable or of an unknown version: no retry can fix it, so it is terminated.
                log.exception("unreadable event on %s; terminating it", durable)
                metrics.EVENTS_CONSUMED.labels(service, reg.event.event_type, "unreadable").inc()
                await msg.term()
        if not items:
            continue
        try:
            outcomes = await handle_batch(service, db, items, reg)
        except asyncio.CancelledError:
            raise
        except Exception:
            outcomes = None  # fall back to one transaction per event to isolate the failing one
        for i, (msg, (env, event, ctx)) in enumerate(zip(good, items, strict=True)):
            try:
                if outcomes is None:
                    ran = await handle_once(service, db, env, reg, event, ctx)
                else:
                    ran = outcomes[i]
                metrics.EVENTS_CONSUMED.labels(service, env.type, "handled" if ran else "duplicate").inc()
                await msg.ack()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler for %s failed on event %s; redelivering", env.type, env.id)
                metrics.EVENTS_CONSUMED.labels(service, env.type, "error").inc()
                await msg.nak(delay=1)
