"""Reconciliation: the PSP's settlement report against our payment records and the wallet's ledger.

Pure: payments reads the three lists (the report through its adapter, records from its database,
movements from the wallet) and stores or shows what `match` returns. Every settled report row must
have exactly one settled payment record of the same kind, amount and currency, and exactly one
ledger movement under the idempotency key payments posts it with; every settled record must appear
in the report. Fee rows are the PSP's charges to the operator: they move no player money and are
not matched against records; `fee_bookings` says which of them the wallet books (each once, under
`fee_key`, attributed to the player of the payment the row references) and which cannot be.

The three lists must cover the same window (the report's day): a record settled just before
midnight but reported the next day shows as `missing-in-report` until that day is reconciled.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gameplane.contracts.payments import fee_key
from gameplane.payments.adapters.base import SettlementRow

RecordKind = Literal["deposit", "payout", "refund", "chargeback"]
MismatchKind = Literal["missing-credit", "double-credit", "amount-mismatch", "currency-mismatch",
                       "unknown-reference", "missing-in-report"]

# Record states in which the money has moved at the PSP. A deposit later refunded or charged back
# was still settled (the refund or chargeback is its own record and its own report row).
SETTLED_STATES: dict[str, frozenset[str]] = {
    "deposit": frozenset({"succeeded", "refunded", "charged_back"}),
    "payout": frozenset({"paid"}),
    "refund": frozenset({"succeeded", "settled"}),
    "chargeback": frozenset({"succeeded", "settled", "posted"}),
}


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    psp: str
    reference: str
    psp_reference: str
    kind: RecordKind
    amount: int
    currency: str
    state: str

    @property
    def settled(self) -> bool:
        return self.state in SETTLED_STATES.get(self.kind, frozenset())


@dataclass(frozen=True, slots=True)
class LedgerMovement:
    idempotency_key: str
    kind: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    reference: str
    detail: str
    psp: str = ""
    psp_reference: str = ""


def ledger_key(kind: str, reference: str, psp_reference: str) -> str:
    """The wallet idempotency key payments posts a settled record under (issue 14's fixed names;
    refunds are not named there and follow the chargeback's form)."""
    if kind == "deposit":
        return f"payments:deposit:{reference}"
    if kind == "payout":
        return f"payments:withdrawal:{reference}"
    if kind == "chargeback":
        return f"payments:chargeback:{psp_reference}"
    if kind == "refund":
        return f"payments:refund:{psp_reference}"
    raise ValueError(f"no ledger key for kind {kind!r}")


def match(report: list[SettlementRow], records: list[PaymentRecord],
          ledger: list[LedgerMovement]) -> list[Mismatch]:
    """Every disagreement between the three, in report order then record order; [] when they agree."""
    out: list[Mismatch] = []
    by_psp_ref: dict[tuple[str, str, str], list[PaymentRecord]] = defaultdict(list)
    for rec in records:
        by_psp_ref[(rec.psp, rec.kind, rec.psp_reference)].append(rec)
    moves: dict[str, list[LedgerMovement]] = defaultdict(list)
    for mv in ledger:
        moves[mv.idempotency_key].append(mv)

    reported: set[tuple[str, str, str]] = set()
    used_keys: set[str] = set()
    for row in report:
        if row.kind == "fee":
            continue
        key = (row.psp, row.kind, row.psp_reference)
        if key in reported:
            out.append(Mismatch("double-credit", row.reference,
                                f"the report lists {row.kind} {row.psp_reference} more than once",
                                row.psp, row.psp_reference))
            continue
        reported.add(key)
        found = by_psp_ref.get(key, [])
        settled = [r for r in found if r.settled]
        if not found:
            out.append(Mismatch("unknown-reference", row.reference,
                                f"{row.kind} {row.psp_reference} of {row.amount} {row.currency} settled at the PSP "
                                f"matches no payment record", row.psp, row.psp_reference))
            continue
        rec = settled[0] if settled else found[0]
        flagged = rec.currency != row.currency or rec.amount != row.amount
        if rec.currency != row.currency:
            out.append(Mismatch("currency-mismatch", rec.reference,
                                f"{row.kind}: report {row.currency}, record {rec.currency}", row.psp,
                                row.psp_reference))
        elif rec.amount != row.amount:
            out.append(Mismatch("amount-mismatch", rec.reference,
                                f"{row.kind}: report {row.amount} {row.currency}, record {rec.amount}",
                                row.psp, row.psp_reference))
        keys = {ledger_key(r.kind, r.reference, r.psp_reference) for r in found}
        used_keys |= keys
        posted = [mv for k in sorted(keys) for mv in moves.get(k, [])]
        if len(settled) > 1 or len(posted) > 1:
            out.append(Mismatch("double-credit", rec.reference,
                                f"{row.kind} {row.psp_reference}: {len(settled)} settled records, "
                                f"{len(posted)} ledger movements for one settlement", row.psp, row.psp_reference))
        elif not posted or not settled:
            state = f"record state {rec.state!r}" if not settled else "no ledger movement"
            out.append(Mismatch("missing-credit", rec.reference,
                                f"{row.kind} {row.psp_reference} settled at the PSP: {state}", row.psp,
                                row.psp_reference))
        else:
            mv = posted[0]
            if flagged and (mv.currency, mv.amount) == (rec.currency, rec.amount):
                pass  # the ledger agrees with our record: one disagreement with the report, listed above
            elif mv.currency != row.currency:
                out.append(Mismatch("currency-mismatch", rec.reference,
                                    f"{row.kind}: report {row.currency}, ledger {mv.currency}", row.psp,
                                    row.psp_reference))
            elif mv.amount != row.amount:
                out.append(Mismatch("amount-mismatch", rec.reference,
                                    f"{row.kind}: report {row.amount} {row.currency}, ledger {mv.amount}",
                                    row.psp, row.psp_reference))

    for rec in records:
        if rec.settled and (rec.psp, rec.kind, rec.psp_reference) not in reported:
            out.append(Mismatch("missing-in-report", rec.reference,
                                f"{rec.kind} {rec.psp_reference} of {rec.amount} {rec.currency} is {rec.state} "
                                f"here but absent from the PSP's report", rec.psp, rec.psp_reference))
            used_keys.add(ledger_key(rec.kind, rec.reference, rec.psp_reference))
    known_keys = used_keys | {ledger_key(r.kind, r.reference, r.psp_reference) for r in records}
    for key, mvs in moves.items():
        if key not in known_keys:
            out.append(Mismatch("unknown-reference", key.rsplit(":", 1)[-1],
                                f"ledger movement {key} ({mvs[0].amount} {mvs[0].currency}) has no payment record"))
    return out


@dataclass(frozen=True, slots=True)
class FeeBooking:
    """One fee row of a report, to be booked on the wallet's payment_fees account."""

    psp: str
    psp_reference: str
    reference: str  # the payment (ours) the fee was charged for
    player_id: uuid.UUID
    amount: int
    currency: str

    @property
    def key(self) -> str:
        """One booking per row, however often the day is reconciled."""
        return fee_key(self.psp, self.psp_reference)


def fee_bookings(report: list[SettlementRow],
                 players: Mapping[str, uuid.UUID]) -> tuple[list[FeeBooking], list[Mismatch]]:
    """The report's fee rows to book, in report order, and the ones that cannot be: a row listed
    twice (booked once, listed as `double-credit`) and a row whose reference is no payment of this
    PSP (`players`: our reference -> the payment's player; `unknown-reference`: there is no player
    to attribute it to, so finance books it by hand)."""
    out: list[FeeBooking] = []
    wrong: list[Mismatch] = []
    seen: set[tuple[str, str]] = set()
    for row in report:
        if row.kind != "fee":
            continue
        if (row.psp, row.psp_reference) in seen:
            wrong.append(Mismatch("double-credit", row.reference,
                                  f"the report lists fee {row.psp_reference} more than once (booked once)",
                                  row.psp, row.psp_reference))
            continue
        seen.add((row.psp, row.psp_reference))
        player = players.get(row.reference) if row.reference else None
        if player is None:
            what = f"payment {row.reference}, unknown here" if row.reference else "no payment"
            wrong.append(Mismatch("unknown-reference", row.reference or row.psp_reference,
                                  f"fee {row.psp_reference} of {row.amount} {row.currency} was charged on {what}: "
                                  f"not booked", row.psp, row.psp_reference))
            continue
        out.append(FeeBooking(row.psp, row.psp_reference, row.reference, player, row.amount, row.currency))
    return out, wrong
