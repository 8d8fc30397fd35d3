"""The KYC state machine: unverified -> pending -> verified | rejected, rejected -> pending again."""

from __future__ import annotations

from typing import get_args

from gameplane.contracts.players import KycState
from gameplane.players.errors import InvalidKycTransition

STATES: tuple[KycState, ...] = get_args(KycState)

TRANSITIONS: dict[KycState, frozenset[KycState]] = {
    "unverified": frozenset({"pending"}),
    "pending": frozenset({"verified", "rejected"}),
    # A rejected player may resubmit documents; a verified one has nothing left to submit.
    "rejected": frozenset({"pending"}),
    "verified": frozenset(),
}


def can_transition(current: KycState, wanted: KycState) -> bool:
    return wanted in TRANSITIONS[current]


def transition(current: KycState, wanted: KycState) -> KycState:
    if not can_transition(current, wanted):
        raise InvalidKycTransition(current, wanted)
    return wanted
