"""The service-tier helper `running`: a service whose start never finishes fails fast, saying
where it waited, instead of holding the whole run until pytest-timeout's limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from gameplane.devtools.testing import running


def app_whose_start_waits(seconds: float) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await wait_for_the_broker(seconds)
        yield

    return FastAPI(title="stuck-service", lifespan=lifespan)


async def wait_for_the_broker(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_a_start_that_never_finishes_fails_with_where_it_waited() -> None:
    with pytest.raises(AssertionError) as failed:
        async with running(app_whose_start_waits(3600), start_seconds=0.2):
            pass
    assert "stuck-service did not start in 0 s" in str(failed.value)
    assert "wait_for_the_broker" in str(failed.value)  # the stack of the waiting coroutine
    # the test's own task is usable afterwards: nothing left cancelled
    await asyncio.sleep(0)


async def test_a_start_within_the_limit_serves_requests() -> None:  # negative control
    async with running(app_whose_start_waits(0.05), start_seconds=5) as client:
        assert (await client.get("/openapi.json")).status_code == 200
