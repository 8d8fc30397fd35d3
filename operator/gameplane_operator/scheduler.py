"""Coalescing, bounded work queue of platform reconciles.

Child objects emit many watch events (a rollout alone emits dozens); each only *marks* its platform
dirty. One drain task per platform waits a short debounce, then runs the reconcile with at most
`workers` platforms in flight at once. Failures back off exponentially; successes schedule a slow
resync as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from . import metrics

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
RunFn = Callable[[Key, bool], Awaitable[bool]]  # (platform, full?) -> succeeded?


class Scheduler:
    def __init__(self, run: RunFn, workers: int, debounce: float, resync: float) -> None:
        self._run = run
        self._slots = asyncio.Semaphore(workers)
        self._debounce = debounce
        self._resync = resync
        self._locks: dict[Key, asyncio.Lock] = {}
        self._dirty: dict[Key, bool] = {}  # key -> a full reconcile is needed (else status only)
        self._drains: dict[Key, asyncio.Task[None]] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._rechecks: dict[Key, asyncio.TimerHandle] = {}

    def known(self) -> int:
        return len(self._locks)

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def nudge(self, key: Key, full: bool = True) -> None:
        """Mark a platform dirty; it is reconciled soon, once, however many nudges arrive."""
        self._dirty[key] = self._dirty.get(key, False) or full
        task = self._drains.get(key)
        if task is None or task.done():
            self._drains[key] = asyncio.create_task(self._drain(key), name=f"reconcile {key[0]}/{key[1]}")
        metrics.QUEUE_DEPTH.set(len(self._dirty))

    async def run_now(self, key: Key) -> bool:
        """A full reconcile right away (kopf handlers await this one to report success or retry)."""
        self._dirty.pop(key, None)
        async with self._slots, self._lock(key):
            ok = await self._run(key, True)
        self._after(key, ok)
        return ok

    async def _drain(self, key: Key) -> None:
        await asyncio.sleep(self._debounce)
        while key in self._dirty:
            full = self._dirty.pop(key)
            metrics.QUEUE_DEPTH.set(len(self._dirty))
            async with self._slots, self._lock(key):
                try:
                    ok = await self._run(key, full)
                except Exception:
                    log.exception("reconcile of %s/%s crashed", *key)
                    ok = False
            if not self._after(key, ok):
                return

    def _after(self, key: Key, ok: bool) -> bool:
        """Book-keep one run; returns whether the drain loop may continue."""
        if key not in self._locks:  # forgotten meanwhile (the platform is gone)
            return False
        old = self._timers.pop(key, None)
        if old:
            old.cancel()
        if ok:
            self._failures.pop(key, None)
            delay = self._resync
        else:
            n = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(60.0, 0.5 * 2**n)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self.nudge, key, True)
        return True

    def recheck(self, key: Key, delay: float) -> None:
        """A status refresh in `delay` seconds (something the operator waits for raises no watch
        event, e.g. a Pod applying a fault drill); one pending at a time per platform."""
        old = self._rechecks.pop(key, None)
        if old:
            old.cancel()
        self._rechecks[key] = asyncio.get_running_loop().call_later(delay, self.nudge, key, False)

    def forget(self, key: Key) -> None:
        self._dirty.pop(key, None)
        self._failures.pop(key, None)
        self._locks.pop(key, None)
        for timers in (self._timers, self._rechecks):
            timer = timers.pop(key, None)
            if timer:
                timer.cancel()
        task = self._drains.pop(key, None)
        if task and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        for timer in [*self._timers.values(), *self._rechecks.values()]:
            timer.cancel()
        tasks = [t for t in self._drains.values() if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
