"""Idempotent JetStream consumers: a handler's effects and the processed-event mark commit together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from opentelemetry import context as otel_context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.kit import metrics, telemetry
from gameplane.kit.bus import Bus
from gameplane.kit.db import Database
from gameplane.kit.events import Envelope, Event

log = logging.getLogger("gameplane.consumer")

Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]


@dataclass
class _Registration:
    event: type[Event]
    handler: Handler

    @property
    def durable(self) -> str:
        return self.event.event_type.replace(".", "_")


class Consumers:
    """Register handlers with `@consumers.on(SomeEvent)`; the app runtime starts them."""

    def __init__(self) -> None:
        self._handlers: list[_Registration] = []
        self._tasks: list[asyncio.Task[None]] = []

    def on(self, event: type[Event]) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._handlers.append(_Registration(event, fn))
            return fn
        return register

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def start(self, service: str, db: Database, bus: Bus) -> None:
        for reg in self._handlers:
            self._tasks.append(asyncio.create_task(
                _consume(service, db, bus, reg), name=f"{service}-consume-{reg.durable}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def handle_once(service: str, db: Database, env: Envelope, reg_handler: Handler,
                      event: Event) -> bool:
    """Run the handler unless this consumer already processed the event. True when it ran."""
    consumer = f"{service}:{env.type}"
    async with db.transaction() as s:
        fresh = (await s.execute(text(
            "INSERT INTO processed_events (event_id, consumer) VALUES (:id, :c) "
            "ON CONFLICT DO NOTHING RETURNING event_id"), {"id": env.id, "c": consumer})).first()
        if fresh is None:
            return False
        await reg_handler(s, event, env)
    return True


async def _consume(service: str, db: Database, bus: Bus, reg: _Registration) -> None:
    await bus.ready.wait()
    durable = f"{service}-{reg.durable}"
    while True:
        try:
            sub = await bus.js.pull_subscribe(
                reg.event.subject(), durable=durable,
                config=ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                      deliver_policy=DeliverPolicy.ALL, max_deliver=-1, ack_wait=30))
            break
        except Exception as exc:
            log.warning("subscribe %s failed: %s", durable, exc)
            await asyncio.sleep(1)
    try:
        await _fetch_loop(service, db, sub, durable, reg)
    finally:
        # a pull subscription left behind makes the connection's drain wait its full timeout (30 s)
        try:
            await asyncio.wait_for(sub.unsubscribe(), timeout=2)
        except (Exception, asyncio.CancelledError):
            log.warning("unsubscribe of %s did not complete", durable)


async def _fetch_loop(service: str, db: Database, sub: Any, durable: str, reg: _Registration) -> None:
    while True:
        try:
            msgs = await sub.fetch(batch=50, timeout=1)
        except (FetchTimeoutError, TimeoutError):
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("fetch on %s failed: %s", durable, exc)
            await asyncio.sleep(0.5)
            continue
        for msg in msgs:
            env = Envelope.model_validate_json(msg.data)
            token = otel_context.attach(telemetry.extract(dict(msg.headers or {})))
            try:
                with telemetry.tracer("gameplane.consumer").start_as_current_span(f"consume {env.type}"):
                    ran = await handle_once(service, db, env, reg.handler, env.open())
                metrics.EVENTS_CONSUMED.labels(service, env.type, "handled" if ran else "duplicate").inc()
                await msg.ack()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler for %s failed on event %s; redelivering", env.type, env.id)
                metrics.EVENTS_CONSUMED.labels(service, env.type, "error").inc()
                await msg.nak(delay=1)
            finally:
                otel_context.detach(token)
