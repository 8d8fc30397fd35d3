"""Responsible-gaming rules on the money path (pure). The state comes from the newest
`players.protection_changed` snapshot the wallet stored; sums come from the wallet's own ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


@dataclass(frozen=True, slots=True)
class Limit:
    kind: str  # deposit | loss | session
    period: str  # day | week | month | session
    value: int

    @property
    def window(self) -> timedelta | None:
        return WINDOWS.get(self.period)


@dataclass(frozen=True, slots=True)
class State:
    currency: str
    limits: tuple[Limit, ...]
    timeout_until: datetime | None
    self_excluded_until: datetime | None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # self-excluded | timed-out | deposit-limit | loss-limit
    detail: str
    limit: Limit | None = None


def effective_limits(raw: Sequence[dict[str, Any]], now: datetime) -> tuple[Limit, ...]:
    """A pending increase counts only once its cooling-off has passed."""
    out = []
    for item in raw:
        value = int(item["value"])
        pending, at = item.get("pending_value"), item.get("pending_effective_at")
        if pending is not None and at is not None:
            when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            if when <= now:
                value = int(pending)
        out.append(Limit(str(item["kind"]), str(item["period"]), value))
    return tuple(out)


def blocked(state: State | None, now: datetime) -> Refusal | None:
    """Self-exclusion and time-out stop bets and deposits alike."""
    if state is None:
        return None
    if state.self_excluded_until is not None and state.self_excluded_until > now:
        return Refusal("self-excluded", f"self-excluded until {state.self_excluded_until.isoformat()}")
    if state.timeout_until is not None and state.timeout_until > now:
        return Refusal("timed-out", f"timed out until {state.timeout_until.isoformat()}")
    return None


def windowed(state: State | None, kind: str, currency: str) -> list[Limit]:
    """The limits of `kind` that the wallet can enforce for this currency (session limits belong
    to the sessions service; limits are in the player's currency)."""
    if state is None or state.currency != currency:
        return []
    return [lim for lim in state.limits if lim.kind == kind and lim.window is not None]


def check_deposit(limits: Sequence[Limit], deposited: dict[str, int], amount: int) -> Refusal | None:
    """`deposited[period]` is the sum already deposited in that window. Every window is checked,
    so the strictest one decides."""
    for lim in sorted(limits, key=lambda x: x.value - deposited.get(x.period, 0)):
        used = deposited.get(lim.period, 0)
        if used + amount > lim.value:
            return Refusal("deposit-limit", f"deposit of {amount} exceeds the {lim.period} deposit limit "
                           f"{lim.value} ({used} already deposited)", lim)
    return None


def check_loss(limits: Sequence[Limit], net_loss: dict[str, int], stake: int) -> Refusal | None:
    """Net loss = stakes − wins in the window; a bet is refused if losing it would pass the limit."""
    for lim in sorted(limits, key=lambda x: x.value - net_loss.get(x.period, 0)):
        lost = net_loss.get(lim.period, 0)
        if lost + stake > lim.value:
            return Refusal("loss-limit", f"a stake of {stake} could exceed the {lim.period} loss limit "
                           f"{lim.value} (net loss so far {lost})", lim)
    return None


def deposit_headroom(limits: Sequence[Limit], deposited: dict[str, int]) -> int | None:
    """What may still be deposited under the strictest deposit limit (never below 0); None when
    no deposit limit applies. Agrees with check_deposit: an amount passes it iff amount <= this."""
    if not limits:
        return None
    return max(0, min(lim.value - deposited.get(lim.period, 0) for lim in limits))
