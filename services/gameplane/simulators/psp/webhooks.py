"""Webhook delivery as a PSP does it: asynchronous, signed at each attempt, retried with exponential
backoff until the receiver answers 2xx (never given up: a receiver that is down gets everything when
it is back), and, on purpose, sometimes twice and sometimes out of order.

The chance draws come from one RNG seeded by GP_PSP_SEED, drawn when an event is queued, so the same
seed and the same sequence of events give the same duplicates and hold-backs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gameplane.simulators.psp.dialects import event_body, sign
from gameplane.simulators.psp.store import Event

log = logging.getLogger("gameplane.psp.webhooks")


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    dialect: str = field(compare=False)
    body: bytes = field(compare=False)
    copy: int = field(compare=False, default=1)
    attempts: int = field(compare=False, default=0)


@dataclass
class Policy:
    duplicate_ratio: float = 0.0
    max_copies: int = 2
    reorder_ratio: float = 0.0
    reorder_delay: float = 0.5
    retry_initial: float = 0.5
    retry_max: float = 60.0
    paused: bool = False


class Dispatcher:
    def __init__(self, *, secret: Callable[[str], str | None], url: Callable[[str], str | None], policy: Policy,
                 seed: int | None, concurrency: int, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.secret = secret
        self.url = url
        self.policy = policy
        self.rng = random.Random(seed)
        self.sem = asyncio.Semaphore(concurrency)
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.queue: list[Delivery] = []
        self.seq = itertools.count()
        self.wake = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        # Every attempt, for the control API and tests (the latest ones only on a long run).
        self.log: deque[dict[str, Any]] = deque(maxlen=200_000)
        self.task: asyncio.Task[None] | None = None

    def reseed(self, seed: int | None) -> None:
        self.rng = random.Random(seed)

    def enqueue(self, ev: Event) -> None:
        body = event_body(ev)
        p = self.policy
        copies = 1
        while copies < p.max_copies and self.rng.random() < p.duplicate_ratio:
            copies += 1
        held = self.rng.random() < p.reorder_ratio
        due = time.monotonic() + (p.reorder_delay * (1 + self.rng.random()) if held else 0.0)
        for n in range(1, copies + 1):
            heapq.heappush(self.queue, Delivery(due, next(self.seq), ev.event_id, ev.dialect, body, n))
        self.wake.set()

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.inflight)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="psp-webhooks")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for t in list(self.inflight):
            t.cancel()
        await asyncio.gather(*self.inflight, return_exceptions=True)
        await self.http.aclose()

    def resume(self) -> None:
        self.wake.set()

    async def _run(self) -> None:
        while True:
            self.wake.clear()
            if self.policy.paused or not self.queue:
                await self.wake.wait()
                continue
            delay = self.queue[0].due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
                continue
            await self.sem.acquire()  # order: the next due delivery starts before any later one
            d = heapq.heappop(self.queue)
            task = asyncio.create_task(self._attempt(d))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def _attempt(self, d: Delivery) -> None:
        d.attempts += 1
        status: int | None = None
        error: str | None = None
        try:
            url, secret = self.url(d.dialect), self.secret(d.dialect)
            if not url or not secret:
                error = "no webhook URL configured"
            else:
                headers = {"Content-Type": "application/json", "User-Agent": f"gameplane-psp/{d.dialect}",
                           **sign(d.dialect, secret, d.body, int(time.time()))}
                resp = await self.http.post(url, content=d.body, headers=headers)
                status = resp.status_code
        except Exception as exc:  # whatever went wrong, the delivery is retried, never lost
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.sem.release()
        ok = status is not None and 200 <= status < 300
        backoff = None if ok else min(self.policy.retry_initial * 2 ** (d.attempts - 1), self.policy.retry_max)
        self.log.append({"event_id": d.event_id, "dialect": d.dialect, "copy": d.copy, "attempt": d.attempts,
                         "status": status, "ok": ok, "error": error, "retry_in": backoff})
        if backoff is not None:
            log.info("webhook %s (copy %d) attempt %d failed (%s); retry in %.2fs", d.event_id, d.copy, d.attempts,
                     status or error, backoff)
            d.due = time.monotonic() + backoff
            heapq.heappush(self.queue, d)
            self.wake.set()
