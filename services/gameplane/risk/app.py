"""The risk service: decisions for payments, harm scores from play, review cases and rule set
versions for the back office."""

from __future__ import annotations

from fastapi import FastAPI

from gameplane.kit import fastroutes, periodic
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.audit import audit_router
from gameplane.risk import sweeper
from gameplane.risk.api import backoffice, fast_routes, internal
from gameplane.risk.events import build_consumers
from gameplane.risk.rulesets import RuleCache
from gameplane.risk.settings import RiskSettings


async def _sweep(rt: Runtime) -> None:
    await sweeper.sweep_once(rt.database, rt.settings.harm_levels)  # type: ignore[attr-defined]


START_JOBS, STOP_JOBS = periodic.schedule(
    periodic.Job("sweep", lambda s: s.sweep_interval_seconds, _sweep, at_start=True))


def build_app(settings: RiskSettings | None = None) -> FastAPI:
    settings = settings or RiskSettings()
    cache = RuleCache()

    # The decision path reads and writes with the bare asyncpg pool (hot_pool): one round trip each.
    runtime = Runtime("risk", settings, migrations="gameplane.risk", consumers=build_consumers(cache),
                      hot_pool=True, on_start=[START_JOBS], on_stop=[STOP_JOBS])
    runtime.state["rules"] = cache
    app = create_app(runtime, [internal, backoffice, audit_router("/internal/risk")], title="gameplane risk",
                     description="Risk decisions for deposits and withdrawals, harm scores, review cases "
                                 "and versioned rule sets.", app_class=fastroutes.FastRoutesApp)
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
