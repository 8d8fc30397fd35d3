"""A background loop: deletes buckets no window reads any more and refreshes the gauges of open
cases and of players by harm level (cheap counts over small indexes)."""

from __future__ import annotations

from sqlalchemy import text

from gameplane.kit.db import Database, utcnow
from gameplane.risk import metrics, store

LEVELS = ("low", "medium", "high")


async def sweep_once(db: Database, harm_levels: tuple[int, int, int]) -> None:
    now = utcnow()
    async with db.transaction() as s:
        await store.prune(s, now)
    async with db.session() as s:
        n, oldest = (await s.execute(text(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM :now - min(opened_at)), 0) FROM cases "
            "WHERE state = 'open'"), {"now": now})).one()
        levels = (await s.execute(text(
            "SELECT count(*) FILTER (WHERE harm_score >= :l AND harm_score < :m), "
            "count(*) FILTER (WHERE harm_score >= :m AND harm_score < :h), count(*) FILTER (WHERE harm_score >= :h) "
            "FROM player_features WHERE harm_score > 0"),
            {"l": harm_levels[0], "m": harm_levels[1], "h": harm_levels[2]})).one()
    metrics.OPEN_CASES.set(n)
    metrics.OLDEST_OPEN_CASE.set(float(oldest))
    for level, count in zip(LEVELS, levels, strict=True):
        metrics.HARM_PLAYERS.labels(level).set(count)
