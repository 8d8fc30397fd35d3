"""A service whose PostgreSQL is not up yet waits for it instead of exiting (Pods start together)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from gameplane.devtools.infra import EmbeddedPostgres, free_port
from gameplane.kit.db import Database


@contextlib.asynccontextmanager
async def late_proxy(port: int, target_port: int, delay: float) -> AsyncIterator[None]:
    """A TCP forwarder to PostgreSQL that starts listening only after `delay` seconds."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server: asyncio.Server | None = None

    async def open_later() -> None:
        nonlocal server
        await asyncio.sleep(delay)
        server = await asyncio.start_server(handle, "127.0.0.1", port)

    opener = asyncio.create_task(open_later())
    try:
        yield
    finally:
        opener.cancel()
        if server is not None:
            server.close()


async def test_start_up_waits_for_a_database_that_comes_up_late(pg: EmbeddedPostgres) -> None:
    port = free_port()
    db = Database(pg.dsn().replace(f":{pg.port}/", f":{port}/"))
    try:
        async with late_proxy(port, pg.port, delay=1.5):
            started = time.monotonic()
            await db.wait_reachable(timeout=20)
            waited = time.monotonic() - started
        assert waited >= 1.0  # it did wait: the first attempts were refused
    finally:
        await db.dispose()


async def test_a_database_that_never_answers_fails_start_up_after_the_limit() -> None:
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/postgres")
    started = time.monotonic()
    try:
        with pytest.raises(OSError):
            await db.wait_reachable(timeout=1.0)
    finally:
        await db.dispose()
    assert time.monotonic() - started < 10
