"""Domain rules of payments (pure: no I/O): the state machine, the AML/KYC gates, the risk fail-safe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

# webhook kind -> (states it may arrive in, state it leads to). A success after expiry is honoured:
# money the PSP took is never dropped. Anything else (a failure after success, a repeated event
# under a new id) changes nothing.
DEPOSIT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "payment.succeeded": (frozenset({"pending", "expired", "failed"}), "succeeded"),
    "payment.failed": (frozenset({"pending"}), "failed"),
    "payment.expired": (frozenset({"pending"}), "expired"),
}
PAYOUT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "payout.paid": (frozenset({"processing"}), "paid"),
    "payout.failed": (frozenset({"processing"}), "failed"),
}
CANCELLABLE = frozenset({"pending", "held", "review"})
DECIDABLE = frozenset({"held", "review"})
FINAL = frozenset({"succeeded", "failed", "expired", "paid", "rejected", "cancelled"})


def next_state(kind: str, payment_kind: str, state: str) -> str | None:
    """The state a webhook moves a payment to, or None when it does not apply in `state`."""
    table = DEPOSIT_TRANSITIONS if payment_kind == "deposit" else PAYOUT_TRANSITIONS
    rule = table.get(kind)
    if rule is None or state not in rule[0]:
        return None
    return rule[1]


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


Gate = Literal["ok", "kyc-rejected", "kyc-required", "aml-kyc-required"]


@dataclass(frozen=True)
class AmlState:
    threshold: int  # minor units of `threshold_currency`
    threshold_currency: str
    cumulative: int  # settled deposits + withdrawals (incl. this one) in the withdrawal's currency


def withdrawal_gate(kyc_state: str, aml: AmlState, *, kyc_always: bool) -> Gate:
    """What stops a withdrawal before risk: a rejected identity refuses it outright; an unverified
    one refuses it when every withdrawal needs KYC, and holds it once the player's cumulative
    movements pass the AML threshold (released when KYC is verified).

    Without exchange rates the threshold is compared in the withdrawal's own currency when that
    differs from the threshold's (a conservative reading for currencies weaker than the euro)."""
    if kyc_state == "verified":
        return "ok"
    if kyc_state == "rejected":
        return "kyc-rejected"
    if kyc_always:
        return "kyc-required"
    if aml.cumulative > aml.threshold:
        return "aml-kyc-required"
    return "ok"


def failsafe_deposit_allowed(amount: int, limit: int) -> bool:
    """Risk is down or slow: small deposits go on, larger ones are refused (the player may retry)."""
    return amount <= limit
