"""The sessions service: game sessions, protection at launch, session time and reality checks."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from gameplane.kit.app import Runtime, create_app
from gameplane.sessions import sweeper
from gameplane.sessions.api import internal, public
from gameplane.sessions.events import consumers
from gameplane.sessions.settings import SessionsSettings


def build_app(settings: SessionsSettings | None = None) -> FastAPI:
    settings = settings or SessionsSettings()

    async def start_sweeper(rt: Runtime) -> None:
        rt.state["sweeper"] = asyncio.create_task(
            sweeper.run(rt.database, settings.sweep_interval_seconds), name="sessions-sweeper")

    async def stop_sweeper(rt: Runtime) -> None:
        task = rt.state.pop("sweeper", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    runtime = Runtime("sessions", settings, migrations="gameplane.sessions", consumers=consumers,
                      on_start=[start_sweeper], on_stop=[stop_sweeper])
    return create_app(runtime, [public, internal], title="gameplane sessions",
                      description="Game sessions: launch, protection checks, session time, reality checks.")
