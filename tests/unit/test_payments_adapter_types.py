"""The PSP seam's types: money as positive integer minor units in a known currency, the fixed event
vocabulary, our ids as text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gameplane.payments.adapters.base import PaymentRequest, SettlementRow, WebhookEvent, WebhookRejected

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def row(kind: str, ref: str, psp_ref: str, amount: int = 1000, currency: str = "EUR") -> SettlementRow:
    return SettlementRow(psp="simpsp", psp_reference=psp_ref, reference=ref, kind=kind,  # type: ignore[arg-type]
                         amount=amount, currency=currency, settled_at=AT)


def test_amounts_are_positive_minor_units_and_currencies_known() -> None:
    with pytest.raises(ValidationError):
        row("deposit", "r", "p", amount=0)
    with pytest.raises(ValidationError):
        row("deposit", "r", "p", currency="XXX")
    with pytest.raises(ValidationError):
        SettlementRow(psp="simpsp", psp_reference="p", reference="r", kind="deposit", amount=10.5,  # type: ignore[arg-type]
                      currency="EUR", settled_at=AT)


def test_webhook_event_kinds_are_the_fixed_vocabulary() -> None:
    base = dict(event_id="e1", reference="r", psp_reference="p", amount=1, currency="EUR", occurred_at=AT)
    assert WebhookEvent(kind="payment.succeeded", **base).kind == "payment.succeeded"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WebhookEvent(kind="payment.maybe", **base)  # type: ignore[arg-type]
    assert WebhookRejected("stale-webhook", "old").code == "stale-webhook"


def test_our_uuids_are_accepted_as_references_and_player_ids() -> None:
    ref, player = uuid.uuid4(), uuid.uuid4()
    req = PaymentRequest(reference=ref, player_id=player, amount=100, currency="eur",  # type: ignore[arg-type]
                         return_url="https://x", expires_at=AT)
    assert (req.reference, req.player_id, req.currency) == (str(ref), str(player), "EUR")
    with pytest.raises(ValidationError):  # a naive time is refused: expiry must be unambiguous
        PaymentRequest(reference="r", player_id="p", amount=100, currency="EUR", return_url="https://x",
                       expires_at=datetime(2026, 12, 1, 12, 0))
