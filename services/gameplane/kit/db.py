"""Async SQLAlchemy per service database, plus the kit's own tables (outbox, processed events)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, MetaData, String, Table, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

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
        Column("id", UUID(as_uuid=True), nullable=False, unique=True, default=uuid.uuid4),
        Column("subject", String(200), nullable=False),
        Column("headers", JSONB().with_variant(JSON(), "sqlite"), nullable=False, server_default=text("'{}'")),
        Column("payload", JSONB().with_variant(JSON(), "sqlite"), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )
    Table(
        "processed_events", metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("consumer", String(200), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Database:
    """Engine + session factory of one service database."""

    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False) -> None:
        self.url = url
        # A fixed-size pool: overflow connections would be opened and closed under every burst (each
        # one a TCP + auth handshake), and pre-ping would add a round trip to every checkout. A
        # connection broken by a database restart is invalidated on its first error instead.
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=0, pool_timeout=10, pool_recycle=1800, echo=echo,
            connect_args={"ssl": False} if "ssl" not in url else {})
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

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

    async def dispose(self) -> None:
        await self.engine.dispose()


def utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
