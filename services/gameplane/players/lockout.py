"""Brute-force lock: too many failed logins within a window lock the account for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Failures:
    count: int = 0
    window_started_at: datetime | None = None
    locked_until: datetime | None = None


def locked(state: Failures, now: datetime) -> bool:
    return state.locked_until is not None and now < state.locked_until


def record_failure(state: Failures, now: datetime, *, max_failures: int, window: timedelta,
                   lock_for: timedelta) -> Failures:
    if state.window_started_at is None or now - state.window_started_at > window:
        state = Failures(0, now, None)
    count = state.count + 1
    if count >= max_failures:
        # The lock starts a fresh window, so the first wrong guess after it does not re-lock at once.
        return Failures(0, None, now + lock_for)
    return Failures(count, state.window_started_at, state.locked_until)
