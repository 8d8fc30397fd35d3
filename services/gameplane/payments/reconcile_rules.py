"""Reconciliation matcher (pure): the PSP's settlement report against payments' records and the
wallet's ledger movements.

PLACEHOLDER with the seam's names (issue14.md, "Reconciliation matcher"), written by the payments
helper so the reconciliation I/O can be wired and tested; the psp helper's version replaces it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from gameplane.payments.adapters.base import SettlementRow

MismatchKind = Literal["missing-credit", "double-credit", "amount-mismatch", "currency-mismatch",
                       "unknown-reference", "missing-in-report"]
SETTLED = {"deposit": {"succeeded"}, "payout": {"paid"}, "refund": {"succeeded"}, "chargeback": {"succeeded"}}
_KEY = {"deposit": "payments:deposit:{}", "payout": "payments:withdrawal:{}", "chargeback": "payments:chargeback:{}"}


@dataclass(frozen=True)
class PaymentRecord:
    psp: str
    reference: str
    psp_reference: str | None
    kind: Literal["deposit", "payout", "refund", "chargeback"]
    amount: int
    currency: str
    state: str


@dataclass(frozen=True)
class LedgerMovement:
    idempotency_key: str
    kind: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    reference: str | None
    detail: str


def _ledger_key(kind: str, reference: str, psp_reference: str | None) -> str | None:
    pattern = _KEY.get(kind)
    if pattern is None:
        return None
    return pattern.format(psp_reference if kind == "chargeback" else reference)


def match(report: list[SettlementRow], records: list[PaymentRecord], ledger: list[LedgerMovement]) -> list[Mismatch]:
    out: list[Mismatch] = []
    by_ref = {(r.kind, r.reference): r for r in records}
    moves: dict[str, list[LedgerMovement]] = {}
    for m in ledger:
        moves.setdefault(m.idempotency_key, []).append(m)
    seen: Counter[tuple[str, str]] = Counter()
    for row in report:
        if row.kind == "fee":
            continue
        kind = row.kind if row.kind != "payout" else "payout"
        seen[(kind, row.reference)] += 1
        rec = by_ref.get((kind, row.reference))
        if rec is None:
            out.append(Mismatch("unknown-reference", row.reference, f"{row.kind} {row.psp_reference} in the report"))
            continue
        if rec.currency != row.currency:
            out.append(Mismatch("currency-mismatch", row.reference, f"report {row.currency}, ours {rec.currency}"))
            continue
        if rec.amount != row.amount:
            out.append(Mismatch("amount-mismatch", row.reference, f"report {row.amount}, ours {rec.amount}"))
            continue
        key = _ledger_key(kind, row.reference, row.psp_reference)
        if key is None:
            continue
        posted = moves.get(key, [])
        if not posted:
            out.append(Mismatch("missing-credit", row.reference, f"nothing posted under {key}"))
        elif len(posted) > 1:
            out.append(Mismatch("double-credit", row.reference, f"{len(posted)} movements under {key}"))
        elif posted[0].amount != row.amount or posted[0].currency != row.currency:
            out.append(Mismatch("amount-mismatch", row.reference,
                                f"ledger {posted[0].amount} {posted[0].currency}, report {row.amount} {row.currency}"))
    for rec in records:
        if rec.state in SETTLED.get(rec.kind, set()) and seen[(rec.kind, rec.reference)] == 0:
            out.append(Mismatch("missing-in-report", rec.reference, f"{rec.kind} {rec.state} but not in the report"))
    return out
