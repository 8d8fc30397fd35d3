"""Async SQLAlchemy per service database, plus the kit's own tables (outbox, processed events)."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import JSON, BigInteger, Column, DateTime, MetaData, String, Table, event, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from gameplane.kit import metrics

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_base() -> type[DeclarativeBase]:
    """A declarative base with its own metadata, which already holds the kit tables."""
    metadata = MetaData(naming_convention=NAMING)
    add_kit_tables(metadata)

    class Base(DeclarativeBase):
        pass

    Base.metadata = metadata
    return Base


def add_kit_tables(metadata: MetaData) -> None:
    Table(
        "outbox", metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=True),
        # unique by construction (uuid4); JetStream de-duplicates on it. No index: one less write per event.
        Column("id", UUID(as_uuid=True), nullable=False, default=uuid.uuid4),
        Column("subject", String(200), nullable=False),
        Column("headers", JSONB().with_variant(JSON(), "sqlite"), nullable=False, server_default=text("'{}'")),
        Column("payload", JSONB().with_variant(JSON(), "sqlite"), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # a row is deleted once JetStream acknowledged it: everything here is still to be published
    )
    Table(
        "processed_events", metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("consumer", String(200), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def libpq_dsn(url: str) -> str:
    """The DSN every connection is opened with, in libpq's form, which asyncpg reads whole:
    `sslmode`, `sslrootcert`, `sslcert`, `sslkey` (and `host`/`port` of a Unix socket) are
    honoured as libpq does. A DSN that names no sslmode (and no PGSSLMODE in the environment)
    gets sslmode=disable: the development servers speak no TLS, and production DSNs say
    sslmode=verify-full (docs/production.md)."""
    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
    if not re.search(r"[?&]sslmode=", dsn) and "PGSSLMODE" not in os.environ:
        dsn += ("&" if "?" in dsn else "?") + "sslmode=disable"
    return dsn


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """A SQLAlchemy engine whose connections asyncpg opens from `libpq_dsn(url)` (SQLAlchemy's own
    URL translation would pass sslmode to asyncpg as an unknown argument, or drop it)."""
    dsn = libpq_dsn(url)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    return create_async_engine(url.split("?", 1)[0], async_creator=connect, **kwargs)


class Database:
    """Engine + session factory of one service database."""

    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False, service: str | None = None) -> None:
        """`service`: the name its metrics carry; without one nothing is measured (tools, tests)."""
        self.url = url
        self.service = service
        self.dsn = libpq_dsn(url)
        # A fixed-size pool: overflow connections would be opened and closed under every burst (each
        # one a TCP + auth handshake), and pre-ping would add a round trip to every checkout. A
        # connection broken by a database restart is invalidated on its first error instead.
        self.engine: AsyncEngine = create_engine(
            url, pool_size=pool_size, max_overflow=0, pool_timeout=10, pool_recycle=1800, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._pool: asyncpg.Pool | None = None
        self._query_seconds = metrics.DB_QUERY_DURATION.labels(service) if service else None
        if self._query_seconds is not None:
            _time_statements(self.engine, self._query_seconds)

    async def open_pool(self, size: int) -> asyncpg.Pool:
        """A bare asyncpg pool beside the engine, for the few hot statements where SQLAlchemy's
        per-statement work would be most of the CPU (no ORM, no pre-ping, prepared statements
        cached per connection).

        For single statements only: a released connection is not reset (asyncpg's default reset is
        one more round trip, `RESET ALL; UNLISTEN *; ...`, per use), so nothing may SET, LISTEN or
        take session advisory locks on it. An open transaction is still rolled back on release."""
        if self._pool is None:
            pool = await asyncpg.create_pool(self.dsn, min_size=min(2, size), max_size=size, reset=_keep_session,
                                             init=self._time_queries if self._query_seconds else None)
            assert pool is not None
            self._pool = pool
        return self._pool

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the hot-path pool is not open (Runtime(hot_pool=True) opens it at start)")
        return self._pool

    async def _time_queries(self, conn: asyncpg.Connection) -> None:
        """The hot pool's statements are timed by asyncpg itself (its query logger, called soon after
        each statement); the engine's, which run as prepared statements it does not log, by
        `_time_statements`."""
        seconds = self._query_seconds
        assert seconds is not None
        conn.add_query_logger(lambda record: seconds.observe(record.elapsed))

    def observe_pool(self) -> None:
        """Set the pool gauges from both pools' own counts (called when metrics are scraped)."""
        if self.service is None:
            return
        pool: Any = self.engine.pool
        in_use, idle, size = pool.checkedout(), pool.checkedin(), pool.size()
        if self._pool is not None:
            in_use += self._pool.get_size() - self._pool.get_idle_size()
            idle += self._pool.get_idle_size()
            size += self._pool.get_max_size()
        metrics.DB_POOL_CONNECTIONS.labels(self.service, "in_use").set(in_use)
        metrics.DB_POOL_CONNECTIONS.labels(self.service, "idle").set(idle)
        metrics.DB_POOL_SIZE.labels(self.service).set(size)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one committed-or-rolled-back transaction."""
        async with self.sessions() as s, s.begin():
            yield s

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def wait_reachable(self, timeout: float) -> None:
        """Ping until the server answers or `timeout` seconds pass (then the last error is raised).

        A platform's Pods start together and PostgreSQL is often the slowest: waiting here keeps a
        service from exiting and being restarted by its supervisor only because it came up first.
        """
        async for attempt in AsyncRetrying(stop=stop_after_delay(timeout), reraise=True,
                                           wait=wait_exponential(multiplier=0.25, max=3)):  # fmt: skip
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("waiting for the database (attempt %d)", attempt.retry_state.attempt_number)
                await self.ping()

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


def _time_statements(engine: AsyncEngine, seconds: Any) -> None:
    """Observe every statement the engine runs, from cursor execute to its result (an error skips
    the observation: the statement did not complete)."""
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info["gp_started"] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _done(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started = conn.info.pop("gp_started", None)
        if started is not None:
            seconds.observe(time.perf_counter() - started)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The hot pool's reset on release: nothing beyond asyncpg's own rollback of an open transaction."""


def utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
