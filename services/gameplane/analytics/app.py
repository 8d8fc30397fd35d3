"""The analytics service: facts from the platform's events, rollups, and the KPI API."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from gameplane.analytics import metrics
from gameplane.analytics.api import backoffice
from gameplane.analytics.events import build_consumers
from gameplane.analytics.facts import Ingest
from gameplane.analytics.partitions import TABLES, Partitions, partition_days
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.db import Database, utcnow

log = logging.getLogger("gameplane.analytics")


async def maintain(db: Database, partitions: Partitions, settings: AnalyticsSettings) -> None:
    """Partitions ahead of today, and the partition gauges; again every interval."""
    while True:
        try:
            await partitions.ahead(db, utcnow().date(), settings.partitions_ahead_days)
            for table in TABLES:
                metrics.PARTITIONS.labels(table).set(len(await partition_days(db, table)))
        except Exception:
            log.exception("partition maintenance failed; retrying at the next interval")
        await asyncio.sleep(settings.maintenance_interval_seconds)


def build_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    partitions = Partitions()

    async def start(rt: Runtime) -> None:
        # the first round before the consumers' first batch needs no on-demand creation
        await partitions.ahead(rt.database, utcnow().date(), settings.partitions_ahead_days)
        rt.state["maintenance"] = asyncio.create_task(maintain(rt.database, partitions, settings),
                                                      name="analytics-partitions")

    async def stop(rt: Runtime) -> None:
        task = rt.state.pop("maintenance", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    runtime = Runtime("analytics", settings, migrations="gameplane.analytics", publishes=False,
                      on_start=[start], on_stop=[stop])
    # the consumers write through the runtime's database, which exists once the runtime does
    runtime.consumers = build_consumers(Ingest(runtime.database, partitions))
    runtime.state["partitions"] = partitions
    return create_app(runtime, [backoffice], title="gameplane analytics",
                      description="Fact tables fed by the platform's events, partitioned by day; KPIs "
                                  "(GGR, NGR, hold, RTP vs certified, DAU/MAU, deposits, FTD, ARPU) that "
                                  "reconcile with the ledger; CSV export.")
