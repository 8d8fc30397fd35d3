"""The payments service's player and back-office API models, its refusals and the events it
publishes (subjects `gameplane.payments.*`; risk, bonus and analytics consume them).

Player routes (through the gateway, player token):
  POST /v1/payments/deposits                      DepositCreate    -> 201 PaymentView (redirect_url)
  POST /v1/payments/withdrawals                   WithdrawalCreate -> 201 PaymentView
  POST /v1/payments/withdrawals/{id}/cancel                        -> PaymentView
  GET  /v1/payments                                                -> PaymentPage (own payments, newest first)
PSP webhooks (through the gateway's partner route, no player token; the PSP's signature):
  POST /webhooks/payments/{psp}                                    -> 200 WebhookAck
Back office (/internal/payments/..., callers("backoffice") + a staff token; see docs/architecture.md).

Amounts are integer minor units of `currency`, within gameplane.kit.money's bound.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from gameplane.kit.events import Event
from gameplane.kit.money import CurrencyError, max_amount, validate_currency
from gameplane.kit.problems import ProblemType

# The development PSP secret (`gameplane up`, tests): a payments without GP_PAYMENTS_DEV_MODE=true
# refuses to start with it, so no deployment verifies webhooks with a key printed here.
DEV_PSP_SECRET = "dev-psp-secret-change-me-0123456789"
KNOWN_DEV_PSP_SECRETS = frozenset({DEV_PSP_SECRET})

PATH_DEPOSITS = "/v1/payments/deposits"
PATH_WITHDRAWALS = "/v1/payments/withdrawals"
PATH_WEBHOOK = "/webhooks/payments/{psp}"

# Wallet idempotency keys: one spelling, shared by the flows and the reconciliation.
def deposit_key(reference: str) -> str:
    return f"payments:deposit:{reference}"


def withdrawal_key(reference: str) -> str:
    """The hold; its post and void carry `:post` / `:void` after it."""
    return f"payments:withdrawal:{reference}"


def chargeback_key(psp_reference: str) -> str:
    return f"payments:chargeback:{psp_reference}"


def fee_key(psp: str, psp_reference: str) -> str:
    """A PSP's fee row (its settlement report), booked by the reconciliation: contracts.wallet.FeeRequest.
    Outside `payments:` on purpose: a fee is no payment movement, so the reconciliation's ledger
    movements (prefix `payments:`) never take it for one without a record."""
    return f"fee:{psp}:{psp_reference}"


# ---- refusals -------------------------------------------------------------------------------

UNKNOWN_PSP = ProblemType(404, "unknown-psp", "No such payment provider")
DEPOSIT_NOT_ALLOWED = ProblemType(403, "deposit-not-allowed", "Deposit refused by player protection")
KYC_REQUIRED = ProblemType(403, "kyc-required", "Identity verification required")
UNDERAGE = ProblemType(403, "underage", "Player is below the jurisdiction's minimum age")
RISK_DENIED = ProblemType(403, "risk-denied", "Refused by risk checks")
RISK_UNAVAILABLE = ProblemType(503, "risk-unavailable", "Risk checks unavailable for this amount")
UNKNOWN_METHOD = ProblemType(409, "unknown-method",
                             "Withdrawals go only to a payment method the player deposited with")
INSUFFICIENT_FUNDS = ProblemType(402, "insufficient-funds", "Insufficient funds")
PAYMENT_NOT_FOUND = ProblemType(404, "payment-not-found", "Payment not found")
NOT_CANCELLABLE = ProblemType(409, "not-cancellable", "Withdrawal can no longer be cancelled")
NOT_DECIDABLE = ProblemType(409, "not-decidable", "Withdrawal is not waiting for a decision")
DECIDED_BY_RISK_CASE = ProblemType(409, "decided-by-risk-case",
                                   "Withdrawal waits for its risk case: decide the case in risk's back office")
PSP_UNAVAILABLE = ProblemType(503, "psp-unavailable", "Payment provider unavailable")
CURRENCY_MISMATCH = ProblemType(409, "currency-mismatch", "Not the currency of the player's account")
PLAYER_NOT_FOUND = ProblemType(404, "player-not-found", "Player not found")
# Webhook refusals (each leaves a webhook-rejection record, nothing moves)
WEBHOOK_BAD_SIGNATURE = ProblemType(401, "webhook-bad-signature", "Webhook signature invalid")
WEBHOOK_STALE = ProblemType(400, "webhook-stale", "Webhook too old (replayed?)")
WEBHOOK_MALFORMED = ProblemType(400, "webhook-malformed", "Webhook body unreadable")
WEBHOOK_UNKNOWN_REFERENCE = ProblemType(404, "webhook-unknown-reference", "Webhook names no payment of ours")
WEBHOOK_MISMATCH = ProblemType(409, "webhook-mismatch", "Webhook disagrees with the payment")


# ---- player API -----------------------------------------------------------------------------

Amount = Annotated[StrictInt, Field(gt=0)]
Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")]


class _Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Amount
    currency: Currency

    @field_validator("currency")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            return validate_currency(v)
        except CurrencyError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _bounded(self) -> _Money:
        if self.amount > max_amount(self.currency):
            raise ValueError(f"amount beyond the bound of {max_amount(self.currency)} minor units")
        return self


class DepositCreate(_Money):
    # No return URL from the player: the PSP sends them back to the platform's own address only
    # (a caller-chosen one would make the hosted page an open redirect).
    psp: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")


class WithdrawalCreate(_Money):
    method_fingerprint: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")


PaymentKind = Literal["deposit", "withdrawal"]
PaymentState = Literal[
    "pending",      # deposit: session open at the PSP; withdrawal: being checked
    "succeeded",    # deposit: money received (credited once `credited` is true)
    "failed",       # deposit declined / payout failed (hold voided)
    "expired",      # deposit session expired without payment
    "held",         # withdrawal: waiting (AML/KYC, see held_reason)
    "review",       # withdrawal: waiting for a risk review
    "approved",     # withdrawal: cleared, the payout is being sent
    "processing",   # withdrawal: payout sent to the PSP
    "paid",         # withdrawal: PSP paid it out (hold posted once `credited` is true)
    "rejected",     # withdrawal: refused (risk or staff), hold voided
    "cancelled",    # withdrawal: cancelled by the player, hold voided
]


class PaymentView(BaseModel):
    id: uuid.UUID
    reference: str
    kind: PaymentKind
    state: PaymentState
    player_id: uuid.UUID
    amount: int
    currency: str
    psp: str
    psp_reference: str | None = None
    method_fingerprint: str | None = None
    redirect_url: str | None = None
    expires_at: datetime | None = None
    held_reason: str | None = Field(default=None, description="why a withdrawal waits or a payment failed")
    credited: bool = Field(default=False, description=(
        "the wallet has moved the money: a deposit credited, a payout's hold posted; the PSP's "
        "answer (state) lands first, the wallet call follows it"))
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentView]
    next_cursor: str | None = None


class WebhookAck(BaseModel):
    event_id: str
    outcome: Literal["applied", "duplicate", "ignored"]
    state: PaymentState | None = None


class StaffDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500, pattern=r"^[^\x00]+$")


class WebhookRejectionView(BaseModel):
    id: int
    psp: str
    code: str
    detail: str
    event_id: str | None
    reference: str | None
    received_at: datetime


class MismatchView(BaseModel):
    id: int
    day: str
    kind: str
    reference: str | None
    detail: str
    found_at: datetime


class ReconciliationRun(BaseModel):
    day: str
    report_rows: int
    records: int
    movements: int
    fees: int = Field(default=0, description="fee rows of the reports booked on the wallet (each once: a re-run "
                      "replays the booking)")
    mismatches: list[MismatchView]


# ---- events ---------------------------------------------------------------------------------

class _PaymentEvent(Event):
    payment_id: uuid.UUID
    reference: str
    player_id: uuid.UUID
    amount: int
    currency: str
    psp: str
    method_fingerprint: str | None = None
    at: datetime


class DepositStarted(_PaymentEvent):
    event_type = "payments.deposit_started"


class DepositSucceeded(_PaymentEvent):
    event_type = "payments.deposit_succeeded"
    late: bool = Field(default=False, description="the PSP confirmed it after the session had expired")


class DepositFailed(_PaymentEvent):
    event_type = "payments.deposit_failed"
    reason: str


class WithdrawalRequested(_PaymentEvent):
    event_type = "payments.withdrawal_requested"


class WithdrawalPaid(_PaymentEvent):
    event_type = "payments.withdrawal_paid"


class WithdrawalFailed(_PaymentEvent):
    event_type = "payments.withdrawal_failed"
    reason: str


class WithdrawalCancelled(_PaymentEvent):
    event_type = "payments.withdrawal_cancelled"


class Chargeback(_PaymentEvent):
    event_type = "payments.chargeback"
    psp_reference: str
