"""The grant state machine (docs/architecture.md, bonus): pure, no I/O.

    issued ──> active ──> wagering ──> completed ──> converted
      │          │           │
      └──────────┴───────────┴──> expired | cancelled | forfeited

issued: made by bonus, the wallet (and for free spins the provider) not yet told;
active: the money (or the spins) is with the player, nothing wagered yet;
wagering: settled stakes count toward the requirement;
completed: the requirement is met (and every free spin played), conversion owed;
converted, expired, cancelled, forfeited: closed; bonus money never moves again.
An active grant whose requirement is already met (0x, or a cashback) goes straight to completed.
"""

from __future__ import annotations

from typing import get_args

from gameplane.contracts.bonus import GrantState

STATES: tuple[GrantState, ...] = get_args(GrantState)
OPEN: frozenset[GrantState] = frozenset({"issued", "active", "wagering"})
CLOSED: frozenset[GrantState] = frozenset({"converted", "expired", "cancelled", "forfeited"})
_ENDINGS: frozenset[GrantState] = frozenset({"expired", "cancelled", "forfeited"})

TRANSITIONS: dict[GrantState, frozenset[GrantState]] = {
    "issued": frozenset({"active"}) | _ENDINGS,
    "active": frozenset({"wagering", "completed"}) | _ENDINGS,
    "wagering": frozenset({"completed"}) | _ENDINGS,
    "completed": frozenset({"converted"}),
    "converted": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
    "forfeited": frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a {current} grant cannot become {target}")
        self.current = current
        self.target = target


def can(current: GrantState, target: GrantState) -> bool:
    return target in TRANSITIONS[current]


def transition(current: GrantState, target: GrantState) -> GrantState:
    if not can(current, target):
        raise InvalidTransition(current, target)
    return target


def is_done(required: int, wagered: int, spins: int | None, spins_played: int) -> bool:
    """Whether wagering is complete: the requirement met and, for free spins, every spin played
    (their wins, and so the requirement on them, are only known once the last spin is in)."""
    return wagered >= required and (spins is None or spins_played >= spins)


def after_progress(current: GrantState, required: int, wagered: int, spins: int | None = None,
                   spins_played: int = 0) -> GrantState:
    """The state of an open, credited grant after its progress changed."""
    if current not in ("active", "wagering"):
        raise InvalidTransition(current, "wagering")
    if is_done(required, wagered, spins, spins_played):
        return "completed"
    return "wagering" if wagered > 0 else current
