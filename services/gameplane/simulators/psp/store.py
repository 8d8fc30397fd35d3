"""What the simulated PSP knows, in memory (a simulator: a restart forgets everything).

Dialect-neutral: sessions (payments), payouts, adjustments (chargebacks, refunds), the settlement
ledger behind the daily report, and the events that become webhooks. `dialects.py` renders them on
the wire.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

PaymentStatus = Literal["open", "succeeded", "failed", "expired"]
EventKind = Literal["payment.succeeded", "payment.failed", "payment.expired", "payout.paid", "payout.failed",
                    "chargeback", "refund"]
SettleKind = Literal["deposit", "payout", "refund", "chargeback", "fee"]

PREFIX = {"simpsp": {"payment": "ses_", "payout": "pay_", "chargeback": "dsp_", "refund": "rfd_", "event": "ev_",
                     "fee": "fee_"},
          "cardgw": {"payment": "pi_", "payout": "po_", "chargeback": "dp_", "refund": "re_", "event": "evt_",
                     "fee": "txn_"}}


def now() -> datetime:
    return datetime.now(UTC)


def new_id(dialect: str, what: str) -> str:
    return PREFIX[dialect][what] + secrets.token_hex(12)


@dataclass
class Method:
    type: Literal["card", "ewallet", "bank"]
    fingerprint: str
    label: str
    brand: str = ""
    last4: str = ""


@dataclass
class Payment:
    psp_reference: str
    dialect: str
    reference: str
    player_id: str
    amount: int
    currency: str
    return_url: str
    expires_at: datetime
    created_at: datetime
    status: PaymentStatus = "open"
    method: Method | None = None
    reason: str | None = None
    settled_at: datetime | None = None


@dataclass
class Payout:
    psp_reference: str
    dialect: str
    reference: str
    player_id: str
    amount: int
    currency: str
    method: Method
    created_at: datetime
    due_at: datetime | None  # automatic completion; None: waits for the control API
    status: Literal["pending", "paid", "failed"] = "pending"
    reason: str | None = None


@dataclass
class Adjustment:
    psp_reference: str
    dialect: str
    kind: Literal["chargeback", "refund"]
    payment: Payment
    amount: int
    reason: str
    created_at: datetime


@dataclass
class Settlement:
    dialect: str
    kind: SettleKind
    psp_reference: str
    reference: str
    amount: int
    currency: str
    at: datetime


@dataclass
class Event:
    event_id: str
    dialect: str
    kind: EventKind
    subject: Payment | Payout | Adjustment
    occurred_at: datetime


class Conflict(Exception):
    """A request that contradicts what the PSP already holds (a reused reference, a wrong state)."""


@dataclass
class Store:
    fee_basis_points: int = 150
    payments: dict[str, Payment] = field(default_factory=dict)
    payouts: dict[str, Payout] = field(default_factory=dict)
    adjustments: dict[str, Adjustment] = field(default_factory=dict)
    settlements: list[Settlement] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    by_reference: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (dialect, what, ref) -> psp ref
    instruments: dict[tuple[str, str], Method] = field(default_factory=dict)  # (dialect, fingerprint)

    def _event(self, dialect: str, kind: EventKind, subject: Payment | Payout | Adjustment) -> Event:
        ev = Event(new_id(dialect, "event"), dialect, kind, subject, now())
        self.events.append(ev)
        return ev

    def _settle(self, dialect: str, kind: SettleKind, psp_reference: str, reference: str, amount: int,
                currency: str) -> None:
        self.settlements.append(Settlement(dialect, kind, psp_reference, reference, amount, currency, now()))

    # -- payments ---------------------------------------------------------------------------------

    def create_payment(self, dialect: str, reference: str, player_id: str, amount: int, currency: str,
                       return_url: str, expires_at: datetime) -> tuple[Payment, bool]:
        """The session for `reference` (created=False when it already existed with the same terms)."""
        known = self.by_reference.get((dialect, "payment", reference))
        if known is not None:
            p = self.payments[known]
            if (p.amount, p.currency, p.player_id) != (amount, currency, player_id):
                raise Conflict(f"reference {reference} was used for another payment")
            return p, False
        p = Payment(new_id(dialect, "payment"), dialect, reference, player_id, amount, currency, return_url,
                    expires_at, now())
        self.payments[p.psp_reference] = p
        self.by_reference[(dialect, "payment", reference)] = p.psp_reference
        return p, True

    def pay(self, p: Payment, method: Method, *, late: bool = False) -> Event:
        allowed = ("expired", "failed") if late else ("open",)
        if p.status not in allowed:
            raise Conflict(f"payment {p.psp_reference} is {p.status}")
        p.status, p.method, p.reason, p.settled_at = "succeeded", method, None, now()
        self.instruments[(p.dialect, method.fingerprint)] = method
        self._settle(p.dialect, "deposit", p.psp_reference, p.reference, p.amount, p.currency)
        fee = p.amount * self.fee_basis_points // 10_000
        if fee > 0:
            self._settle(p.dialect, "fee", new_id(p.dialect, "fee"), p.reference, fee, p.currency)
        return self._event(p.dialect, "payment.succeeded", p)

    def fail(self, p: Payment, reason: str, method: Method | None = None) -> Event:
        if p.status != "open":
            raise Conflict(f"payment {p.psp_reference} is {p.status}")
        p.status, p.reason, p.method = "failed", reason, method
        return self._event(p.dialect, "payment.failed", p)

    def expire(self, p: Payment) -> Event:
        if p.status != "open":
            raise Conflict(f"payment {p.psp_reference} is {p.status}")
        p.status, p.reason = "expired", "expired"
        return self._event(p.dialect, "payment.expired", p)

    def due_expiries(self, at: datetime) -> list[Event]:
        return [self.expire(p) for p in list(self.payments.values()) if p.status == "open" and p.expires_at <= at]

    # -- payouts ----------------------------------------------------------------------------------

    def create_payout(self, dialect: str, reference: str, player_id: str, amount: int, currency: str,
                      fingerprint: str, due_at: datetime | None) -> tuple[Payout, bool]:
        known = self.by_reference.get((dialect, "payout", reference))
        if known is not None:
            po = self.payouts[known]
            if (po.amount, po.currency, po.method.fingerprint) != (amount, currency, fingerprint):
                raise Conflict(f"reference {reference} was used for another payout")
            return po, False
        method = self.instruments.get((dialect, fingerprint))
        if method is None:
            raise LookupError(f"no instrument {fingerprint}: payouts go to an instrument that has paid here")
        po = Payout(new_id(dialect, "payout"), dialect, reference, player_id, amount, currency, method, now(), due_at)
        self.payouts[po.psp_reference] = po
        self.by_reference[(dialect, "payout", reference)] = po.psp_reference
        return po, True

    def complete_payout(self, po: Payout, outcome: Literal["paid", "failed"], reason: str | None = None) -> Event:
        if po.status != "pending":
            raise Conflict(f"payout {po.psp_reference} is {po.status}")
        po.status = outcome
        if outcome == "paid":
            self._settle(po.dialect, "payout", po.psp_reference, po.reference, po.amount, po.currency)
            return self._event(po.dialect, "payout.paid", po)
        po.reason = reason or "payout-failed"
        return self._event(po.dialect, "payout.failed", po)

    def due_payouts(self, at: datetime) -> list[Event]:
        return [self.complete_payout(po, "paid") for po in list(self.payouts.values())
                if po.status == "pending" and po.due_at is not None and po.due_at <= at]

    # -- chargebacks and refunds ------------------------------------------------------------------

    def adjust(self, kind: Literal["chargeback", "refund"], p: Payment, amount: int | None, reason: str) -> Event:
        if p.status != "succeeded":
            raise Conflict(f"payment {p.psp_reference} is {p.status}: nothing to {kind}")
        taken = sum(a.amount for a in self.adjustments.values() if a.payment is p)
        amount = p.amount - taken if amount is None else amount
        if amount <= 0 or taken + amount > p.amount:
            raise Conflict(f"{kind} of {amount} exceeds what is left of payment {p.psp_reference}")
        adj = Adjustment(new_id(p.dialect, kind), p.dialect, kind, p, amount, reason, now())
        self.adjustments[adj.psp_reference] = adj
        self._settle(p.dialect, kind, adj.psp_reference, p.reference, amount, p.currency)
        return self._event(p.dialect, kind, adj)

    def report(self, dialect: str, day: date) -> list[Settlement]:
        return [s for s in self.settlements if s.dialect == dialect and s.at.date() == day]


def card_method(dialect: str, number: str) -> Method:
    brand = {"4": "visa", "5": "mastercard", "3": "amex"}.get(number[:1], "card")
    return Method("card", hashlib.sha256(f"{dialect}:card:{number}".encode()).hexdigest()[:24],
                  f"{brand.upper()} ..{number[-4:]}", brand, number[-4:])


def ewallet_method(dialect: str, account: str) -> Method:
    account = account.strip().lower()
    return Method("ewallet", hashlib.sha256(f"{dialect}:ewallet:{account}".encode()).hexdigest()[:24],
                  f"EWALLET {account}")


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Test cards, as sandboxes publish them: these numbers fail at the issuer; any other valid number pays.
DECLINING_CARDS: dict[str, str] = {
    "4000000000000002": "card-declined",
    "4000000000009995": "insufficient-funds",
    "4000000000000069": "expired-card",
}
