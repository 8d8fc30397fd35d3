"""The bonus service: campaigns and versioned offers, grants and their wagering progress. Money
moves only at the wallet (grant, convert, forfeit); free spins are awarded through games."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from gameplane.bonus import worker
from gameplane.bonus.api import backoffice, public
from gameplane.bonus.clients import GameCategories
from gameplane.bonus.events import build_consumers
from gameplane.bonus.settings import BonusSettings
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.audit import audit_router


def build_app(settings: BonusSettings | None = None, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """`clock`: the wall clock grants expire by (tests move it instead of sleeping)."""
    settings = settings or BonusSettings()
    holder: dict[str, Runtime] = {}

    async def start(rt: Runtime) -> None:
        rt.state["wake"] = asyncio.Event()
        rt.state["worker"] = asyncio.create_task(
            worker.run(rt, settings.sweep_interval_seconds, settings.round_retention_days), name="bonus-worker")

    async def stop(rt: Runtime) -> None:
        task = rt.state.pop("worker", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    runtime = Runtime("bonus", settings, migrations="gameplane.bonus", consumers=build_consumers(holder),
                      on_start=[start], on_stop=[stop])
    holder["rt"] = runtime
    runtime.state["games"] = GameCategories(settings.game_cache_seconds)
    if clock is not None:
        runtime.state["clock"] = clock
    return create_app(runtime, [public, backoffice, audit_router("/internal/bonus", ("finance", "admin"))],
                      title="gameplane bonus",
                      description="Campaigns, versioned offers, grants, wagering, free spins and cashback; "
                                  "money moves only at the wallet.")
