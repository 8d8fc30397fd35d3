"""The wallet checks every ledger invariant on a schedule (kit.periodic), so the breach gauge the
alert reads is current without anyone calling the reconciliation route; with several replicas only
the one holding the advisory lock runs it. Real Postgres, the wallet's lifespan as in a pod."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from prometheus_client import REGISTRY
from sqlalchemy import text
from walletlib import Wallet

from gameplane.devtools.testing import running
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


def runs(outcome: str) -> float:
    return REGISTRY.get_sample_value(
        "gameplane_background_runs_total", {"service": "wallet", "task": "reconciliation", "outcome": outcome}) or 0.0


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the scheduled reconciliation did not run in time"
        await asyncio.sleep(0.05)


async def test_a_scheduled_run_reports_a_breach_without_anyone_asking(service_settings: Any) -> None:
    app = build_app(service_settings(WalletSettings, house_shards=2, reconcile_every_seconds=0.2))
    async with running(app) as client:
        wallet = Wallet(app, client)
        player = uuid.uuid4()
        await wallet.deposit(player, 5_000)
        ok_before = runs("ok")
        await until(lambda: runs("ok") > ok_before)
        assert gauge("gameplane_wallet_reconciliation_breaches") == 0
        # money appears from nowhere: the stored balance no longer matches its entries (invariants 3, 4)
        async with app.state.runtime.database.transaction() as s:
            await s.execute(text("UPDATE accounts SET balance = balance + 1 WHERE owner = :p AND kind = 'cash'"),
                            {"p": str(player)})
        seen = time.time()
        await until(lambda: (gauge("gameplane_wallet_reconciliation_breaches") or 0) >= 2)
        assert (gauge("gameplane_wallet_reconciliation_last_run_timestamp_seconds") or 0) >= seen - 1


async def test_only_the_replica_holding_the_lock_runs_it(service_settings: Any) -> None:
    settings = service_settings(WalletSettings, house_shards=2, reconcile_every_seconds=0.1)
    other = await asyncpg.connect(settings.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # another replica is in the middle of a run
        assert await other.fetchval("SELECT pg_try_advisory_lock(hashtextextended('wallet.reconciliation', 0))")
        app = build_app(settings)
        async with running(app):
            ok_before, skipped_before = runs("ok"), runs("skipped")
            await until(lambda: runs("skipped") >= skipped_before + 3)
            assert runs("ok") == ok_before
            await other.execute("SELECT pg_advisory_unlock(hashtextextended('wallet.reconciliation', 0))")
            await until(lambda: runs("ok") > ok_before)  # the lock is free again: this replica runs it
    finally:
        await other.close()


async def test_zero_turns_the_schedule_off(service_settings: Any) -> None:
    app = build_app(service_settings(WalletSettings, house_shards=2, reconcile_every_seconds=0))
    async with running(app):
        # the hold sweep still runs; the reconciliation does not
        assert set(app.state.runtime.state["jobs"]) == {"hold-expiry"}
