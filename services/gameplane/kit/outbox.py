"""Transactional outbox: the event row commits with the business change; a relay publishes it.

A row stays in the table until JetStream acknowledged it: while NATS is down the table is the
buffer (readiness does not fail on it; `gameplane_outbox_pending` and
`gameplane_outbox_oldest_age_seconds` show the backlog), and it drains oldest first once NATS is
back. The relay takes a batch of rows (FOR UPDATE SKIP LOCKED, so several relays share the work),
publishes them all without waiting in between, and deletes them in the same transaction once
JetStream acknowledged every one; JetStream (the durable log) is where events live afterwards.
A failure rolls the delete back and the batch goes out again: JetStream de-duplicates on
`Nats-Msg-Id` (the event id), so a crash between publish and commit cannot deliver an event
twice within the stream's duplicate window.

The relay works on one bare asyncpg connection of its own, which also LISTENs for the NOTIFY of
new rows: a SQLAlchemy session per poll (20 a second while events keep coming) cost the event loop
about a third as much as the requests themselves in a profile of risk, and the connection is one
per pod either way. When the database drops it, the next round opens a new one (LISTEN included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.kit import metrics, telemetry
from gameplane.kit.bus import Bus
from gameplane.kit.db import Database
from gameplane.kit.events import Envelope, Event

NOTIFY_CHANNEL = "gameplane_outbox"

# the rows stay locked (and deleted only if the transaction commits) while their batch is published
# (the payload comes back as text and goes out as is: decoding jsonb only to encode it again was
# most of the relay's CPU, taken from the same event loop that serves requests)
_TAKE = ("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) "
         "RETURNING seq, CAST(id AS text), subject, CAST(headers AS text), CAST(payload AS text)")

log = logging.getLogger("gameplane.outbox")

_INSERT = text(
    "INSERT INTO outbox (id, subject, headers, payload) "
    "VALUES (:id, :subject, CAST(:headers AS jsonb), CAST(:payload AS jsonb))")


async def publish(session: AsyncSession, event: Event, *, producer: str,
                  event_id: uuid.UUID | None = None, notify: bool = True) -> uuid.UUID:
    """Stage `event` in the caller's transaction. It is published only if that transaction commits.
    `notify=False` (a hot path under load) skips waking the relay: it finds the row on its next poll."""
    row = staged(event, producer=producer, event_id=event_id)
    await session.execute(_INSERT, row)
    if notify:
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return row["id"]  # type: ignore[no-any-return]


def staged(event: Event, *, producer: str, event_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The outbox row of `event` as bind parameters (id, subject, headers, payload), for a caller
    that inserts it inside a larger statement of its own transaction. Without a NOTIFY NOTIFY_CHANNEL
    the relay picks the row up on its next poll (<= 1 s)."""
    env = Envelope.wrap(event, producer, event_id)
    headers: dict[str, str] = {}
    telemetry.inject(headers)
    return {"id": env.id, "subject": env.subject, "headers": json.dumps(headers), "payload": env.model_dump_json()}


class OutboxRelay:
    def __init__(self, service: str, db: Database, bus: Bus, *, batch: int = 200, ack_timeout: float = 5.0,
                 busy_poll: float = 0.05, idle_poll: float = 1.0) -> None:
        self.service = service
        # Rows written without a NOTIFY (the hot paths skip it) are found by polling: soon again
        # while events keep coming, so they go out in small batches; a once-a-second burst of
        # publishing would stall the requests that share this event loop for tens of ms.
        self.busy_poll = busy_poll
        self.idle_poll = idle_poll
        self.ack_timeout = ack_timeout
        self.db = db
        self.bus = bus
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-outbox-relay")

    async def stop(self) -> None:
        if self._task:
            # Python 3.11's wait_for can swallow a cancel that lands as the wake event fires (the
            # relay then loops on forever and stop() hangs): cancel until the task is really done.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._conn is not None:
            await self._conn.close(timeout=2)
            self._conn = None

    async def _connection(self) -> asyncpg.Connection:
        """The relay's own connection, listening for new rows; a new one when the last was lost."""
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await asyncpg.connect(self.db.dsn)
        try:
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            # Lost (the server restarted, the backend was terminated): relay again at once, on a
            # new connection, instead of sleeping until the idle poll with nobody listening.
            conn.add_termination_listener(lambda _: self._wake.set())
        except BaseException:
            await conn.close(timeout=2)
            raise
        self._conn = conn
        return conn

    async def _run(self) -> None:
        await self.bus.ready.wait()
        backoff = 0.2
        while True:
            try:
                sent = await self.relay_once()
                backoff = 0.2
                if sent < self.batch:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.busy_poll if sent else self.idle_poll)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or DB down: keep the rows, try again later
                log.warning("outbox relay failed: %s; retry in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def relay_once(self) -> int:
        """Publish one batch of rows, oldest first. Returns how many were published."""
        conn = await self._connection()
        try:
            return await self._take_and_publish(conn)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            conn.terminate()  # whatever state it is in, the next round starts on a new connection
            self._conn = None
            raise

    async def _take_and_publish(self, conn: asyncpg.Connection) -> int:
        async with conn.transaction():
            rows = sorted(await conn.fetch(_TAKE, self.batch), key=_seq)
            if not rows:
                return 0
            acks = []
            try:
                for _, event_id, subject, headers, payload in rows:
                    hdrs: dict[str, Any] = json.loads(headers) if headers and headers != "{}" else {}
                    hdrs["Nats-Msg-Id"] = event_id
                    acks.append(await self.bus.js.publish_async(subject, payload.encode(), headers=hdrs))
                await asyncio.wait_for(asyncio.gather(*acks), timeout=self.ack_timeout)
            except BaseException:
                for ack in acks:  # a pending ack holds a slot of the client's in-flight window
                    ack.cancel()
                raise
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def pending(self) -> int:
        """The backlog: rows not yet acknowledged by JetStream, and how long the oldest has waited
        (both exported at every scrape; the GameplaneOutboxBacklog alert watches them)."""
        async with self.db.session() as s:
            n, age = (await s.execute(text(
                "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM outbox"))).one()
        metrics.OUTBOX_PENDING.labels(self.service).set(n)
        metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(float(age))
        return int(n)


def _seq(row: tuple[Any, ...]) -> int:
    return int(row[0])
