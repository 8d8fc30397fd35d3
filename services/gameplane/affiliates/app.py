"""The affiliates service: tracking links and clicks, attribution of registrations, deals and
monthly statements from the wallet's events, signed postbacks. It never writes money and nothing
on the money path calls it: it follows the platform through events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from gameplane.affiliates import postbacks
from gameplane.affiliates.api import backoffice, public
from gameplane.affiliates.events import CONSUMED, build_consumers
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.audit import audit_router


def build_app(settings: AffiliatesSettings | None = None, *,
              clock: Callable[[], datetime] | None = None) -> FastAPI:
    """`clock`: the wall clock clicks and closings are dated by (tests move it instead of waiting)."""
    settings = settings or AffiliatesSettings()
    holder: dict[str, Runtime] = {}

    async def start(rt: Runtime) -> None:
        rt.state["wake"] = asyncio.Event()
        rt.state["sender"] = asyncio.create_task(postbacks.run(rt, settings), name="affiliates-postbacks")

    async def stop(rt: Runtime) -> None:
        task = rt.state.pop("sender", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    consumers = build_consumers(holder)
    runtime = Runtime("affiliates", settings, migrations="gameplane.affiliates", consumers=consumers,
                      on_start=[start], on_stop=[stop])
    holder["rt"] = runtime
    # the kit names a durable consumer <service>-<event type with "_" for ".">
    runtime.state["durables"] = [f"{runtime.name}-{e.event_type.replace('.', '_')}" for e in CONSUMED]
    if clock is not None:
        runtime.state["clock"] = clock
    return create_app(runtime, [public, backoffice, audit_router("/internal/affiliates", ("finance", "admin"))],
                      title="gameplane affiliates",
                      description="Tracking links and clicks, attribution, deals, monthly statements and "
                                  "signed postbacks; figures from the wallet's events.")
