"""Helpers for service-tier tests: run a service app in process (lifespan included) and call it
as another service or as a player would arrive through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from gameplane.kit.auth import PLAYER_HEADER, issue_service_token


@asynccontextmanager
async def running(app: FastAPI, base_url: str = "http://service") -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (migrations, NATS, relay, consumers) and yield a client for it."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
        yield client


def as_service(app: FastAPI, caller: str = "gateway", player_id: uuid.UUID | None = None) -> dict[str, str]:
    """Headers of an internal call from `caller` (and, for player routes, the player it vouches for)."""
    rt = app.state.runtime
    headers = {"authorization": "Bearer " + issue_service_token(rt.settings.service_token_secret, caller, rt.name)}
    if player_id is not None:
        headers[PLAYER_HEADER] = str(player_id)
    return headers


class ManualClock:
    """A wall clock that moves only when told: inject it where a service takes `clock`, then
    `advance(hours=24)` to cross a cooling-off period without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
