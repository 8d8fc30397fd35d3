"""Events players publishes (all through the outbox, in the transaction of the change). It
consumes none: players is the source of truth for accounts and protections."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import (
    KycChanged,
    LimitState,
    LoggedIn,
    PlayerRegistered,
    ProtectionChanged,
    SelfExcluded,
    TimedOut,
)
from gameplane.kit.events import Event
from gameplane.kit.outbox import publish
from gameplane.players.limits import Limit

PRODUCER = "players"
PUBLISHES: tuple[type[Event], ...] = (PlayerRegistered, KycChanged, ProtectionChanged, SelfExcluded, TimedOut,
                                      LoggedIn)


async def emit(session: AsyncSession, event: Event) -> None:
    await publish(session, event, producer=PRODUCER)


def limit_states(limits: Iterable[Limit]) -> list[LimitState]:
    """Contract form of the limits. A pending removal is `pending_effective_at` without a
    `pending_value`: the limit stays in force until then."""
    return [LimitState(kind=lim.kind, period=lim.period, value=lim.value,  # type: ignore[arg-type]
                       pending_value=lim.pending_value, pending_effective_at=lim.pending_effective_at)
            for lim in sorted(limits, key=lambda x: (x.kind, x.period))]


def protection_changed(*, player_id: uuid.UUID, revision: int, currency: str, limits: Iterable[Limit],
                       timeout_until: datetime | None, self_excluded_until: datetime | None,
                       reality_check_minutes: int | None, reason: str) -> ProtectionChanged:
    return ProtectionChanged(player_id=player_id, revision=revision, currency=currency,
                             limits=limit_states(limits), timeout_until=timeout_until,
                             self_excluded_until=self_excluded_until,
                             reality_check_minutes=reality_check_minutes, reason=reason)
