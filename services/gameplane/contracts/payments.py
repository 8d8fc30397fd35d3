"""Events published by `payments` (subjects `gameplane.payments.*`).

Every event names the payment (`payment_id`, our `reference`), the player, the amount in minor
units, the PSP and the fingerprint of the payment method when one is known.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from gameplane.kit.events import Event


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


class DepositFailed(_PaymentEvent):
    event_type = "payments.deposit_failed"
    reason: str | None = None


class WithdrawalRequested(_PaymentEvent):
    event_type = "payments.withdrawal_requested"


class WithdrawalPaid(_PaymentEvent):
    event_type = "payments.withdrawal_paid"


class WithdrawalFailed(_PaymentEvent):
    event_type = "payments.withdrawal_failed"
    reason: str | None = None


class WithdrawalCancelled(_PaymentEvent):
    event_type = "payments.withdrawal_cancelled"


class Chargeback(_PaymentEvent):
    event_type = "payments.chargeback"
