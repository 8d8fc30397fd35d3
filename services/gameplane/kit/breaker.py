"""A small circuit breaker: closed → open after N consecutive failures → half-open probe → closed.

Given the calling service's name, it keeps gameplane_circuit_open{service, target} current itself on
every transition, so no caller (the kit's client, the gateway's proxy) can forget to report it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from gameplane.kit import metrics


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    def __init__(self, target: str, retry_in: float) -> None:
        super().__init__(f"circuit to {target} is open; retry in {retry_in:.1f}s")
        self.target = target
        self.retry_in = retry_in


class CircuitBreaker:
    def __init__(self, target: str, *, failure_threshold: int = 5, reset_timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, caller: str | None = None) -> None:
        self.target = target
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._now = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False
        # Half-open counts as open for the gauge: calls are still refused but for one probe.
        self._gauge = metrics.CIRCUIT_STATE.labels(caller, target) if caller else None
        if self._gauge is not None:
            self._gauge.set(0)

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return State.CLOSED
        if self._now() - self.opened_at >= self.reset_timeout:
            return State.HALF_OPEN
        return State.OPEN

    def before_call(self) -> None:
        state = self.state
        if state is State.OPEN or (state is State.HALF_OPEN and self._probing):
            assert self.opened_at is not None
            raise CircuitOpen(self.target, max(0.0, self.reset_timeout - (self._now() - self.opened_at)))
        if state is State.HALF_OPEN:
            self._probing = True  # one probe at a time while half-open

    def success(self) -> None:
        if self.opened_at is not None and self._gauge is not None:
            self._gauge.set(0)
        self.failures = 0
        self.opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self._now()
            if self._gauge is not None:
                self._gauge.set(1)
