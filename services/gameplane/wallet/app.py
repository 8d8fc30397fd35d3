"""The wallet service: build_app() wires settings, runtime (DB, NATS, outbox, consumers) and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from gameplane.kit import fastroutes
from gameplane.kit.app import Runtime, create_app
from gameplane.wallet.api import backoffice, expire_holds, fast_routes, internal, public
from gameplane.wallet.events import consumers
from gameplane.wallet.rules import Context
from gameplane.wallet.settings import WalletSettings

log = logging.getLogger("gameplane.wallet")


async def _sweep_forever(rt: Runtime, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            expired = await expire_holds(rt)
            if expired:
                log.info("voided %d expired withdrawal holds", len(expired))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("hold expiry sweep failed: %s", exc)


async def _start_sweeper(rt: Runtime) -> None:
    settings: WalletSettings = rt.settings  # type: ignore[assignment]
    rt.state["sweeper"] = asyncio.create_task(_sweep_forever(rt, settings.hold_sweep_seconds), name="wallet-sweeper")


async def _stop_sweeper(rt: Runtime) -> None:
    task = rt.state.pop("sweeper", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def build_app(settings: WalletSettings | None = None) -> FastAPI:
    settings = settings or WalletSettings()
    runtime = Runtime("wallet", settings, migrations="gameplane.wallet", consumers=consumers,
                      hot_pool=settings.sql_fast_path, on_start=[_start_sweeper], on_stop=[_stop_sweeper])
    runtime.state["ctx"] = Context(house_shards=settings.house_shards, hold_ttl_seconds=settings.hold_ttl_seconds)
    app = create_app(runtime, [internal, public, backoffice], title="gameplane wallet",
                     app_class=fastroutes.FastRoutesApp,
                     description="The ledger: double-entry, idempotent, the only writer of money.")
    fastroutes.install(app, runtime, fast_routes(runtime, sql_fast_path=settings.sql_fast_path))
    return app
