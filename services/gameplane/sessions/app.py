"""The sessions service: game sessions, protection at launch, session time and reality checks."""

from __future__ import annotations

from fastapi import FastAPI

from gameplane.kit import periodic
from gameplane.kit.app import Runtime, create_app
from gameplane.sessions import sweeper
from gameplane.sessions.api import internal, public
from gameplane.sessions.events import consumers
from gameplane.sessions.settings import SessionsSettings


async def _sweep(rt: Runtime) -> None:
    await sweeper.sweep_once(rt.database)


START_JOBS, STOP_JOBS = periodic.schedule(
    periodic.Job("sweep", lambda s: s.sweep_interval_seconds, _sweep, at_start=True))


def build_app(settings: SessionsSettings | None = None) -> FastAPI:
    settings = settings or SessionsSettings()

    runtime = Runtime("sessions", settings, migrations="gameplane.sessions", consumers=consumers,
                      on_start=[START_JOBS], on_stop=[STOP_JOBS])
    return create_app(runtime, [public, internal], title="gameplane sessions",
                      description="Game sessions: launch, protection checks, session time, reality checks.")
