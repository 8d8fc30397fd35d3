"""The analytics service: facts from the platform's events, rollups, and the KPI API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from fastapi import FastAPI

from gameplane.analytics import games, metrics, reports
from gameplane.analytics.api import backoffice
from gameplane.analytics.events import CONSUMED, build_consumers
from gameplane.analytics.facts import Ingest
from gameplane.analytics.partitions import TABLES, Partitions, partition_days
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.contracts.analytics import KpiFilters
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.db import Database, utcnow
from gameplane.kit.events import STREAM_NAME
from gameplane.kit.http import DependencyError

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


async def watch_lag(rt: Runtime, durables: list[str], interval: float) -> None:
    """The consumers' backlog, from JetStream, for the ingest-lag alert."""
    while True:
        await asyncio.sleep(interval)
        if rt.bus is None or not rt.bus.connected:
            continue
        for durable in durables:
            try:
                info = await rt.bus.js.consumer_info(STREAM_NAME, durable)
            except Exception:  # not created yet, or NATS away for a moment
                continue
            metrics.CONSUMER_PENDING.labels(durable).set(int(info.num_pending or 0) + int(info.num_ack_pending or 0))


async def check_rtp_once(rt: Runtime, settings: AnalyticsSettings) -> None:
    """Observed RTP per game and currency over the window's rounds against the certified value."""
    today = utcnow().date()
    q = reports.Query(today - timedelta(days=settings.rtp_window_days - 1), today, None, KpiFilters())
    async with rt.database.transaction() as s:
        for game_id, provider, currency, moments in await reports.rtp_rows(s, q):
            try:
                certified = await games.certified_rtp(rt, s, game_id, settings.game_cache_seconds)
            except DependencyError:
                continue  # games away: the gauges keep their last values
            row = reports.rtp_row(game_id, provider, currency, moments, certified)
            labels = (currency, game_id, provider)
            if row.observed is not None:
                metrics.RTP_OBSERVED.labels(*labels).set(row.observed)
            if row.certified is not None:
                metrics.RTP_CERTIFIED.labels(*labels).set(row.certified)
            metrics.RTP_BAND.labels(*labels).set(row.band or 0.0)
            metrics.RTP_DRIFT.labels(*labels).set(1 if row.drift else 0)


async def check_rtp(rt: Runtime, settings: AnalyticsSettings) -> None:
    while True:
        await asyncio.sleep(settings.rtp_check_interval_seconds)
        try:
            await check_rtp_once(rt, settings)
        except Exception:
            log.exception("RTP check failed; retrying at the next interval")


def build_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    partitions = Partitions()

    async def start(rt: Runtime) -> None:
        # the first round before the consumers' first batch needs no on-demand creation
        await partitions.ahead(rt.database, utcnow().date(), settings.partitions_ahead_days)
        rt.state["maintenance"] = asyncio.create_task(maintain(rt.database, partitions, settings),
                                                      name="analytics-partitions")
        durables = sorted({f"{rt.name}-{cls.event_type.replace('.', '_')}" for cls in CONSUMED})
        rt.state["rtp"] = asyncio.create_task(check_rtp(rt, settings), name="analytics-rtp")
        rt.state["lag"] = asyncio.create_task(watch_lag(rt, durables, settings.lag_interval_seconds),
                                              name="analytics-lag")

    async def stop(rt: Runtime) -> None:
        for name in ("maintenance", "lag", "rtp"):
            task = rt.state.pop(name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    runtime = Runtime("analytics", settings, migrations="gameplane.analytics", publishes=False,
                      on_start=[start], on_stop=[stop])
    # the consumers write through the runtime's database, which exists once the runtime does
    runtime.consumers = build_consumers(Ingest(runtime.database, partitions), settings.play_consumers)
    runtime.state["partitions"] = partitions
    return create_app(runtime, [backoffice], title="gameplane analytics",
                      description="Fact tables fed by the platform's events, partitioned by day; KPIs "
                                  "(GGR, NGR, hold, RTP vs certified, DAU/MAU, deposits, FTD, ARPU) that "
                                  "reconcile with the ledger; CSV export.")
