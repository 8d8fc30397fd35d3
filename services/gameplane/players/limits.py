"""Responsible-gaming limits: what a requested change does, and when.

A change that protects the player more (a first limit, a decrease) takes effect at once. A change
that protects less (an increase, a removal) waits a cooling-off period, so a decision taken in the
heat of play only counts if the player still wants it later. Pure: the caller passes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from gameplane.players.errors import InvalidProtectionSetting

LimitKind = Literal["deposit", "loss", "session"]
LimitPeriod = Literal["day", "week", "month", "session"]

PERIODS: dict[str, tuple[str, ...]] = {
    "deposit": ("day", "week", "month"),
    "loss": ("day", "week", "month"),
    "session": ("session",),
}
# Session limits are minutes of play in one session; a day is the longest that makes sense.
MAX_SESSION_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit in force. `value` is minor units of the player's currency (deposit, loss) or
    minutes (session). A pending change carries either a new value or `pending_removal`."""

    kind: str
    period: str
    value: int
    pending_value: int | None = None
    pending_effective_at: datetime | None = None
    pending_removal: bool = False

    @property
    def has_pending(self) -> bool:
        return self.pending_effective_at is not None


def check_kind_period(kind: str, period: str) -> None:
    if kind not in PERIODS:
        raise InvalidProtectionSetting("invalid-limit", "Unknown limit kind", f"{kind!r} is not a limit kind",
                                       kinds=sorted(PERIODS))
    if period not in PERIODS[kind]:
        raise InvalidProtectionSetting("invalid-limit", "Unknown limit period",
                                       f"a {kind} limit has periods {', '.join(PERIODS[kind])}, not {period!r}",
                                       periods=list(PERIODS[kind]))


def check_value(kind: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidProtectionSetting("invalid-limit", "Limit must be a positive integer",
                                       "limits are whole minor units (or minutes for session limits), above 0")
    if kind == "session" and value > MAX_SESSION_MINUTES:
        raise InvalidProtectionSetting("invalid-limit", "Session limit too long",
                                       f"a session limit is at most {MAX_SESSION_MINUTES} minutes")


def settle(limit: Limit | None, now: datetime) -> Limit | None:
    """The limit as it stands at `now`: a pending change whose time has come is applied."""
    if limit is None or limit.pending_effective_at is None or now < limit.pending_effective_at:
        return limit
    if limit.pending_removal:
        return None
    assert limit.pending_value is not None
    return Limit(limit.kind, limit.period, limit.pending_value)


def is_due(limit: Limit | None, now: datetime) -> bool:
    return limit is not None and limit.pending_effective_at is not None and now >= limit.pending_effective_at


def request_change(current: Limit | None, kind: str, period: str, new_value: int | None, now: datetime,
                   cooling_off: timedelta) -> Limit | None:
    """What the limit becomes when the player asks for `new_value` (None = remove the limit).

    Returns the new state: `None` means no limit in force and nothing pending.
    """
    check_kind_period(kind, period)
    if new_value is not None:
        check_value(kind, new_value)
    current = settle(current, now)

    if current is None:
        # No limit yet: a first limit only protects more, so it needs no cooling-off.
        return None if new_value is None else Limit(kind, period, new_value)

    if new_value is None:
        if current.pending_removal:
            return current  # asking again must not restart (or shorten) the wait
        return replace(current, pending_value=None, pending_removal=True,
                       pending_effective_at=now + cooling_off)

    if new_value <= current.value:
        # A decrease (or keeping the value) applies now and cancels any pending loosening.
        return Limit(kind, period, new_value)

    if current.pending_value == new_value and not current.pending_removal:
        return current
    return replace(current, pending_value=new_value, pending_removal=False, pending_effective_at=now + cooling_off)
