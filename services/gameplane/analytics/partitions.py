"""Daily partitions of the fact tables: one per UTC day, created ahead by the maintenance loop and
on demand for an event of a day that has none (a late event: yesterday, or last month)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import text

from gameplane.kit.db import Database

TABLES = ("money_facts", "player_facts")
# one lock for every creation: two consumers meeting a new day at once create it one after the other
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('analytics-partitions'))")


def name(table: str, day: date) -> str:
    return f"{table}_{day:%Y%m%d}"


def ddl(table: str, day: date) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {name(table, day)} PARTITION OF {table} "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')")


# How long a creation on behalf of a consumer waits for the parent table. A consumer's batch runs
# every event in one transaction: once an event has inserted into the parent, a later event of a day
# with no partition waits here for that very transaction, which waits in Python for this one — a
# deadlock PostgreSQL cannot see. The wait ends with LockNotAvailable instead, the batch rolls back,
# and the events are retried one per transaction, where the creation comes before the insert.
CONSUMER_LOCK_TIMEOUT = "2s"


class Partitions:
    """Which days have their partitions (known to this process), and the creation of the others.

    Created in a transaction of their own, before the facts' transaction touches the parent table:
    creating a partition locks the parent, and doing it first keeps that lock out of the row locks
    the rollups take."""

    def __init__(self) -> None:
        self._known: set[tuple[str, date]] = set()

    async def ensure(self, db: Database, table: str, days: Iterable[date],
                     lock_timeout: str = CONSUMER_LOCK_TIMEOUT) -> None:
        missing = sorted({d for d in days if (table, d) not in self._known})
        if not missing:
            return
        async with db.transaction() as s:
            await s.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
            await s.execute(_LOCK)
            existing = set((await s.execute(
                text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"), {"t": table})).scalars())
            for day in missing:
                if name(table, day) not in existing:
                    await s.execute(text(ddl(table, day)))
        self._known.update((table, d) for d in missing)

    async def ahead(self, db: Database, today: date, days: int) -> None:
        """Partitions from `days` days back to `days` days ahead of today, for every fact table."""
        span = [today + timedelta(days=i) for i in range(-days, days + 1)]
        for table in TABLES:
            # never inside a facts transaction: it may wait out a consumer's bounded creation
            await self.ensure(db, table, span, lock_timeout="30s")


async def partition_days(db: Database, table: str) -> list[date]:
    """The days that have a partition of `table` (the runbook and tests read them)."""
    async with db.session() as s:
        names = (await s.execute(
            text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                 "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"), {"t": table})).scalars().all()
    prefix = f"{table}_"
    return sorted(date(int(n[-8:-4]), int(n[-4:-2]), int(n[-2:])) for n in names if n.startswith(prefix))
