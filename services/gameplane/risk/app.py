"""The risk service: decisions for payments, harm scores from play, review cases and rule set
versions for the back office."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from gameplane.kit import fastroutes
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.audit import audit_router
from gameplane.risk import sweeper
from gameplane.risk.api import backoffice, fast_routes, internal
from gameplane.risk.events import build_consumers
from gameplane.risk.rulesets import RuleCache
from gameplane.risk.settings import RiskSettings


def build_app(settings: RiskSettings | None = None) -> FastAPI:
    settings = settings or RiskSettings()
    cache = RuleCache()

    async def start(rt: Runtime) -> None:
        rt.state["sweeper"] = asyncio.create_task(
            sweeper.run(rt.database, settings.sweep_interval_seconds, settings.harm_levels), name="risk-sweeper")

    async def stop(rt: Runtime) -> None:
        task = rt.state.pop("sweeper", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The decision path reads and writes with the bare asyncpg pool (hot_pool): one round trip each.
    runtime = Runtime("risk", settings, migrations="gameplane.risk", consumers=build_consumers(cache),
                      hot_pool=True, on_start=[start], on_stop=[stop])
    runtime.state["rules"] = cache
    app = create_app(runtime, [internal, backoffice, audit_router("/internal/risk")], title="gameplane risk",
                     description="Risk decisions for deposits and withdrawals, harm scores, review cases "
                                 "and versioned rule sets.", app_class=fastroutes.FastRoutesApp)
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
