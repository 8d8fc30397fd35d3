"""The payments service: build_app() wires settings, the PSP adapters, the runtime and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from gameplane.kit import fastroutes
from gameplane.kit.app import Runtime, create_app
from gameplane.payments.adapters.base import PspAdapter
from gameplane.payments.adapters.base import build as build_adapter
from gameplane.payments.api import backoffice_audit, fast_routes, internal, public, webhooks
from gameplane.payments.events import consumers
from gameplane.payments.flows import sweep_once
from gameplane.payments.metrics import OWED
from gameplane.payments.reconcile import reconcile_forever
from gameplane.payments.settings import PaymentsSettings, PspConfig

log = logging.getLogger("gameplane.payments")


async def _sweep_forever(rt: Runtime, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await sweep_once(rt)
            async with rt.database.session() as s:
                from sqlalchemy import text
                OWED.set((await s.execute(text("SELECT count(*) FROM payments WHERE wallet_pending IS NOT NULL"))
                          ).scalar_one())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("payments sweep failed: %s", exc)


async def _start(rt: Runtime) -> None:
    settings: PaymentsSettings = rt.settings  # type: ignore[assignment]
    rt.state["tasks"] = [asyncio.create_task(_sweep_forever(rt, settings.sweep_seconds), name="payments-sweeper")]
    if settings.reconcile_every_seconds:
        rt.state["tasks"].append(asyncio.create_task(reconcile_forever(rt, settings.reconcile_every_seconds),
                                                     name="payments-reconcile"))


async def _stop(rt: Runtime) -> None:
    for task in rt.state.pop("tasks", []):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


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
                      on_start=[_start], on_stop=[_stop])
    runtime.state["adapters"] = adapters if adapters is not None else build_adapters(settings)
    if clock is not None:
        runtime.state["clock"] = clock
    app = create_app(runtime, [public, webhooks, internal, backoffice_audit], title="gameplane payments",
                     app_class=fastroutes.FastRoutesApp,
                     description="Deposits and withdrawals through PSPs, signed webhooks, reconciliation.")
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
