"""The PSP adapter seam (issue14.md, "PSP adapter interface").

PLACEHOLDER written by the payments helper with exactly the seam's names, so payments can be
built and tested before the psp helper's module lands; on merge the psp helper's version of this
file replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

WebhookKind = Literal["payment.succeeded", "payment.failed", "payment.expired", "payout.paid", "payout.failed",
                      "chargeback", "refund"]
RejectCode = Literal["bad-signature", "stale-webhook", "malformed-webhook"]


@dataclass(frozen=True)
class PaymentMethod:
    type: Literal["card", "ewallet", "bank"]
    fingerprint: str
    label: str


@dataclass(frozen=True)
class PaymentRequest:
    reference: str
    player_id: str
    amount: int
    currency: str
    return_url: str
    expires_at: datetime


@dataclass(frozen=True)
class PaymentSession:
    psp_reference: str
    redirect_url: str
    expires_at: datetime


@dataclass(frozen=True)
class PayoutRequest:
    reference: str
    player_id: str
    amount: int
    currency: str
    method: PaymentMethod


@dataclass(frozen=True)
class PayoutAccepted:
    psp_reference: str
    status: str = "pending"


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    kind: WebhookKind
    reference: str
    psp_reference: str
    amount: int
    currency: str
    method: PaymentMethod | None
    occurred_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class SettlementRow:
    psp: str
    psp_reference: str
    reference: str
    kind: Literal["deposit", "payout", "refund", "chargeback", "fee"]
    amount: int
    currency: str
    settled_at: datetime


class WebhookRejected(Exception):
    def __init__(self, code: RejectCode, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class PspAdapter(Protocol):
    name: str

    async def create_payment(self, req: PaymentRequest) -> PaymentSession: ...

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None: ...

    def parse_webhook(self, body: bytes) -> WebhookEvent: ...

    async def settlement_report(self, day: date) -> list[SettlementRow]: ...
