"""Background jobs a service runs every N seconds (sweeps, scheduled reconciliations).

Started after the runtime (database, bus) is up and cancelled before it stops. A failed run is
logged and counted, and the next one runs on time: a job must be safe to repeat, and where two
replicas must not run it at once it takes its own lock (see `exclusive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from gameplane.kit.app import Hook, Runtime

log = logging.getLogger("gameplane.jobs")

JOB_RUNS = Counter("gameplane_background_runs_total",
                   "Runs of a service's background jobs by outcome (ok, failed, skipped)",
                   ["service", "task", "outcome"])


@dataclass(frozen=True)
class Job:
    """`run(rt)` every `every(settings)` seconds, the first time at once when `at_start` (else
    after one interval); 0 or less turns the job off. `run` may return False to say it did
    nothing this time (another replica holds the job's lock)."""

    name: str
    every: Callable[[Any], float]
    run: Callable[[Runtime], Awaitable[object]]
    at_start: bool = False


def schedule(*jobs: Job) -> tuple[Hook, Hook]:
    """The (on_start, on_stop) hooks that run `jobs` for a Runtime; its `state["jobs"]` maps each
    running job's name to its task."""

    async def start(rt: Runtime) -> None:
        running = rt.state.setdefault("jobs", {})
        for job in jobs:
            if (seconds := job.every(rt.settings)) > 0:
                running[job.name] = asyncio.create_task(_loop(rt, job, seconds), name=f"{rt.name}-{job.name}")

    async def stop(rt: Runtime) -> None:
        running = rt.state.get("jobs", {})
        for job in jobs:
            task = running.pop(job.name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return start, stop


async def _loop(rt: Runtime, job: Job, seconds: float) -> None:
    if not job.at_start:
        await asyncio.sleep(seconds)
    while True:
        try:
            outcome = "skipped" if await job.run(rt) is False else "ok"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = "failed"
            log.warning("%s: job %s failed: %s", rt.name, job.name, exc)
        JOB_RUNS.labels(service=rt.name, task=job.name, outcome=outcome).inc()
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def exclusive(rt: Runtime, lock: str) -> Any:
    """A session on a connection holding the session-level advisory lock `lock`, or None when
    another replica holds it. The lock is taken and committed first, so the caller's session starts
    a fresh transaction (it may still set its isolation level)."""
    async with rt.database.engine.connect() as conn:
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), {"k": lock})
        await conn.commit()
        if not got:
            yield None
            return
        try:
            async with AsyncSession(bind=conn) as s:
                yield s
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": lock})
            await conn.commit()
