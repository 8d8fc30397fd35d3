"""The NATS connection of a service: connects in the background, survives server restarts.

The GAMEPLANE stream is ensured on the first connect and again on every reconnect: a server that
came back without its store (a development NATS on an emptyDir, a wiped volume) gets the stream
back before the outbox relay's next publish, instead of answering "no responders" until every
service restarts. Consumers re-create their durable consumers likewise (gameplane.kit.consumer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from gameplane.kit.events import STREAM_NAME, SUBJECT_PREFIX

log = logging.getLogger("gameplane.bus")


class Bus:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[tuple[str, Callable[[Msg], Awaitable[None]]]] = []
        self._listening = 0  # how many of _listeners are subscribed
        self._subscribing = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        # Bumped on every connect, disconnect and reconnect: what a listener heard under one epoch
        # says nothing about what it may have missed since (core NATS does not replay).
        self.epoch = 0
        self.stream_ensures = 0  # reconnects that ensured the stream (for tests and logs)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise ConnectionError("NATS not connected yet")
        return self._js

    @property
    def listening_epoch(self) -> int | None:
        """The current epoch while every listener is subscribed on a live connection, else None."""
        if not self.connected or self._listening < len(self._listeners):
            return None
        return self.epoch

    def listen(self, subject: str, handler: Callable[[Msg], Awaitable[None]]) -> None:
        """Every process of the service hears every message on `subject` from now on (core NATS:
        no durable consumer, no ack, no replay). For keeping a local cache true, not for work
        that must happen once; pair it with `listening_epoch` to know when it may have missed some."""
        self._listeners.append((subject, handler))
        if self.ready.is_set():
            task = asyncio.get_running_loop().create_task(self._subscribe_pending())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _subscribe_pending(self) -> None:
        # The nats client resubscribes these by itself after a reconnect.
        async with self._subscribing:
            while self.nc is not None and self._listening < len(self._listeners):
                subject, handler = self._listeners[self._listening]
                await self.nc.subscribe(subject, cb=handler)
                self._listening += 1

    async def _bump(self) -> None:
        self.epoch += 1

    async def _reconnected(self) -> None:
        self.epoch += 1
        self.stream_ensures += 1
        task = asyncio.get_running_loop().create_task(self._ensure_stream_after_reconnect())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _ensure_stream_after_reconnect(self) -> None:
        # A restarted server may answer JetStream requests a moment after it accepts clients.
        delay = 0.2
        for _ in range(30):
            if self._js is None or not self.connected:
                return  # the next reconnect tries again
            try:
                await ensure_stream(self._js)
                log.info("NATS reconnected; stream %s ensured", STREAM_NAME)
                return
            except Exception as exc:
                log.warning("ensuring stream %s after reconnect failed (%s); retrying", STREAM_NAME, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.name}-nats-connect")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self._listening = 0
                self.nc = await nats.connect(
                    self.url, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    connect_timeout=2, allow_reconnect=True, disconnected_cb=self._bump,
                    reconnected_cb=self._reconnected)
                self.epoch += 1
                self._js = self.nc.jetstream(timeout=5)
                await ensure_stream(self._js)
                await self._subscribe_pending()
                self.ready.set()
                return
            except Exception as exc:  # the server may simply not be up yet
                log.warning("NATS connect to %s failed (%s); retrying in %.1fs", self.url, exc, delay)
                if self.nc is not None:
                    await self.nc.close()
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            # Not drain(): it can wait on pull-subscription inboxes for a long time. Every publish was
            # already acknowledged (the outbox marks rows only after the ack), so closing loses nothing.
            try:
                await asyncio.wait_for(self.nc.close(), timeout=2)
            except Exception as exc:
                log.warning("NATS close: %s", exc)


async def ensure_stream(js: JetStreamContext) -> None:
    config = StreamConfig(name=STREAM_NAME, subjects=[SUBJECT_PREFIX + ">"], duplicate_window=300.0)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)
