"""The wallet service: build_app() wires settings, runtime (DB, NATS, outbox, consumers) and routes."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from gameplane.kit import fastroutes, periodic
from gameplane.kit.app import Runtime, create_app
from gameplane.wallet.api import backoffice, expire_holds, fast_routes, internal, public
from gameplane.wallet.events import consumers
from gameplane.wallet.reconcile import reconcile
from gameplane.wallet.rules import Context
from gameplane.wallet.settings import WalletSettings

log = logging.getLogger("gameplane.wallet")


async def _expire_holds(rt: Runtime) -> None:
    expired = await expire_holds(rt)
    if expired:
        log.info("voided %d expired withdrawal holds", len(expired))


async def _reconcile(rt: Runtime) -> bool:
    """The scheduled run of every ledger invariant (one replica at a time): it keeps
    gameplane_wallet_reconciliation_breaches current for the breach alert."""
    async with periodic.exclusive(rt, "wallet.reconciliation") as s:
        if s is None:
            return False
        report = await reconcile(s)
    if not report.ok:
        log.error("reconciliation found %d breaches: %s", len(report.breaches),
                  "; ".join(b.detail for b in report.breaches[:5]))
    return True


START_JOBS, STOP_JOBS = periodic.schedule(
    periodic.Job("hold-expiry", lambda s: s.hold_sweep_seconds, _expire_holds),
    # at start too: a deployed or restarted wallet shows the state of the books at once
    periodic.Job("reconciliation", lambda s: s.reconcile_every_seconds, _reconcile, at_start=True),
)


def build_app(settings: WalletSettings | None = None) -> FastAPI:
    settings = settings or WalletSettings()
    runtime = Runtime("wallet", settings, migrations="gameplane.wallet", consumers=consumers,
                      hot_pool=settings.sql_fast_path, on_start=[START_JOBS], on_stop=[STOP_JOBS])
    runtime.state["ctx"] = Context(house_shards=settings.house_shards, hold_ttl_seconds=settings.hold_ttl_seconds)
    app = create_app(runtime, [internal, public, backoffice], title="gameplane wallet",
                     app_class=fastroutes.FastRoutesApp,
                     description="The ledger: double-entry, idempotent, the only writer of money.")
    fastroutes.install(app, runtime, fast_routes(runtime, sql_fast_path=settings.sql_fast_path))
    return app
