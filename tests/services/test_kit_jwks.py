"""Players' published keys as the gateway fetches them (kit.jwks.RemoteKeys), against a real HTTP
server that publishes a JWKS: a slow or failing first answer costs a retry, not minutes of
refused logins; a made-up kid costs at most one fetch per interval."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gameplane.devtools.inprocess import listener, served
from gameplane.kit.jwks import RemoteKeys
from gameplane.kit.keys import KeySet, SigningKey
from gameplane.kit.problems import Problem

KEY = SigningKey.generate()


def publisher(failures: int) -> FastAPI:
    """Answers 503 `failures` times, then players' JWKS; counts requests."""
    app = FastAPI()
    app.state.requests = 0

    @app.get("/.well-known/jwks.json")
    async def jwks() -> Any:
        app.state.requests += 1
        if app.state.requests <= failures:
            return JSONResponse({"detail": "busy"}, status_code=503)
        return KeySet.of({"players": [KEY.public]}).jwks()

    return app


async def test_a_failed_first_fetch_is_retried_soon_not_after_min_interval() -> None:
    app = publisher(failures=1)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(served(app, listener()))
        keys = RemoteKeys("players", lambda: url, min_interval=60, cold_interval=0.05)
        with pytest.raises(Problem) as refused:
            await keys.keys_for(KEY.kid)
        assert refused.value.status == 503 and refused.value.slug == "dependency-unavailable"
        await asyncio.sleep(0.06)
        assert KEY.kid in (await keys.keys_for(KEY.kid)).keys  # well before min_interval
        assert app.state.requests == 2
        for _ in range(20):  # loaded: an unknown kid waits for min_interval (60 s) since the last fetch
            await keys.keys_for(SigningKey.generate().kid)
        assert app.state.requests == 2


async def test_warm_loads_the_keys_before_any_token() -> None:
    app = publisher(failures=2)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(served(app, listener()))
        keys = RemoteKeys("players", lambda: url, cold_interval=0.02)
        await keys.warm()
        assert app.state.requests == 3
        assert KEY.kid in (await keys.keys_for(KEY.kid)).keys and app.state.requests == 3
