"""The payments service: build_app() wires settings, the PSP adapters, the runtime and the routes."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import text

from gameplane.kit import fastroutes, periodic
from gameplane.kit.app import Runtime, create_app
from gameplane.payments.adapters.base import PspAdapter
from gameplane.payments.adapters.base import build as build_adapter
from gameplane.payments.api import backoffice_audit, fast_routes, internal, public, webhooks
from gameplane.payments.events import consumers
from gameplane.payments.flows import sweep_once
from gameplane.payments.metrics import OWED
from gameplane.payments.reconcile import reconcile_yesterday
from gameplane.payments.settings import PaymentsSettings, PspConfig

log = logging.getLogger("gameplane.payments")


async def _sweep(rt: Runtime) -> None:
    await sweep_once(rt)
    async with rt.database.session() as s:
        OWED.set((await s.execute(text("SELECT count(*) FROM payments WHERE wallet_pending IS NOT NULL"))).scalar_one())


START_JOBS, STOP_JOBS = periodic.schedule(
    periodic.Job("sweep", lambda s: s.sweep_seconds, _sweep),
    periodic.Job("reconciliation", lambda s: s.reconcile_every_seconds, reconcile_yesterday),
)


def build_adapters(settings: PaymentsSettings) -> dict[str, PspAdapter]:
    """One adapter per configured PSP: from an `adapter_modules` module that names it, else from
    gameplane.payments.adapters."""
    extra: dict[str, Callable[[str, PspConfig], PspAdapter]] = {}
    for module in settings.adapter_modules:
        extra.update(importlib.import_module(module).ADAPTERS)
    return {name: extra[name](name, cfg) if name in extra else build_adapter(name, cfg)
            for name, cfg in settings.psps.items()}


def build_app(settings: PaymentsSettings | None = None, *, adapters: dict[str, PspAdapter] | None = None,
              clock: Callable[[], datetime] | None = None) -> FastAPI:
    """`adapters`: PSP adapters built by the caller (tests); by default from settings.psps."""
    settings = settings or PaymentsSettings()
    # hot_pool: the common webhook runs on bare asyncpg (flows._webhook_fast)
    runtime = Runtime("payments", settings, migrations="gameplane.payments", consumers=consumers, hot_pool=True,
                      on_start=[START_JOBS], on_stop=[STOP_JOBS])
    runtime.state["adapters"] = adapters if adapters is not None else build_adapters(settings)
    if clock is not None:
        runtime.state["clock"] = clock
    app = create_app(runtime, [public, webhooks, internal, backoffice_audit], title="gameplane payments",
                     app_class=fastroutes.FastRoutesApp,
                     description="Deposits and withdrawals through PSPs, signed webhooks, reconciliation.")
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
