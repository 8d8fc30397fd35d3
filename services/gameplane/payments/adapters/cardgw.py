"""Adapter of cardgw, shaped like a common card gateway.

API: form-encoded, `Authorization: Bearer <api key>`, `Idempotency-Key: <our reference>`;
POST /v1/payment_intents (redirect in next_action.redirect_to_url.url), POST /v1/payouts (to the
fingerprint of an instrument that paid), GET /v1/reports/settlement?date= (CSV of balance
transactions, signed gross in minor units, lower-case currencies). Webhooks: event objects
{"id": "evt_..", "type": "payment_intent.succeeded", "created": unix, "data": {"object": {...}}},
header Cardgw-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")> (several v1 allowed,
as during a secret rotation).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from gameplane.payments.adapters.base import (
    PaymentMethod,
    PaymentRequest,
    PaymentSession,
    PayoutAccepted,
    PayoutRequest,
    PspConnection,
    PspError,
    SettlementRow,
    WebhookEvent,
    WebhookRejected,
)
from gameplane.payments.adapters.transport import PspHttp, check_fresh, lower_headers

KINDS = {"payment_intent.succeeded": "payment.succeeded", "payment_intent.payment_failed": "payment.failed",
         "payment_intent.canceled": "payment.expired", "payout.paid": "payout.paid", "payout.failed": "payout.failed",
         "charge.dispute.funds_withdrawn": "chargeback", "charge.refunded": "refund"}
CATEGORIES = {"charge": "deposit", "payout": "payout", "refund": "refund", "dispute": "chargeback", "fee": "fee"}
REPORT_COLUMNS = ["id", "reporting_category", "source_id", "metadata_reference", "gross", "currency", "created_utc"]


def _method(details: Any) -> PaymentMethod | None:
    if not isinstance(details, dict):
        return None
    kind = details["type"]
    inner = details[kind]
    if kind == "card":
        return PaymentMethod(type="card", fingerprint=inner["fingerprint"],
                             label=f"{str(inner.get('brand', 'card')).upper()} ..{inner.get('last4', '')}")
    return PaymentMethod(type=kind, fingerprint=inner["fingerprint"],
                         label=f"{kind.upper()} {inner.get('account', '')}")


def _destination(dest: Any) -> PaymentMethod | None:
    if not isinstance(dest, dict):
        return None
    return PaymentMethod(type=dest["type"], fingerprint=dest["fingerprint"], label=dest.get("label", ""))


def _reason(obj: dict[str, Any]) -> str | None:
    err = obj.get("last_payment_error")
    if isinstance(err, dict) and err.get("code"):
        return str(err["code"])
    for key in ("cancellation_reason", "failure_code", "reason"):
        if obj.get(key):
            return str(obj[key])
    return None


class CardgwAdapter:
    name = "cardgw"

    def __init__(self, conn: PspConnection, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.conn = conn
        self.http = PspHttp(self.name, conn, transport, headers={"Authorization": f"Bearer {conn.api_key}"})

    async def create_payment(self, req: PaymentRequest) -> PaymentSession:
        resp = await self.http.request("POST", "/v1/payment_intents", operation="create_payment",
                                       headers={"Idempotency-Key": req.reference},
                                       data={"amount": str(req.amount), "currency": req.currency.lower(),
                                             "return_url": req.return_url,
                                             "expires_at": str(int(req.expires_at.timestamp())),
                                             "metadata[reference]": req.reference,
                                             "metadata[player_id]": req.player_id})
        intent = resp.json()
        try:
            url = intent["next_action"]["redirect_to_url"]["url"]
        except (KeyError, TypeError):
            raise PspError(f"cardgw: payment intent {intent.get('id')} is {intent.get('status')}, "
                           f"with no page to pay on") from None
        return PaymentSession(psp_reference=intent["id"], redirect_url=url,
                              expires_at=datetime.fromtimestamp(intent["expires_at"], UTC))

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted:
        resp = await self.http.request("POST", "/v1/payouts", operation="create_payout",
                                       headers={"Idempotency-Key": req.reference},
                                       data={"amount": str(req.amount), "currency": req.currency.lower(),
                                             "destination": req.method.fingerprint,
                                             "metadata[reference]": req.reference,
                                             "metadata[player_id]": req.player_id})
        return PayoutAccepted(psp_reference=resp.json()["id"])

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        header = lower_headers(headers).get("cardgw-signature")
        if not header:
            raise WebhookRejected("bad-signature", "no Cardgw-Signature header")
        stamp: str | None = None
        given: list[str] = []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t":
                stamp = value
            elif key == "v1":
                given.append(value)
        if stamp is None or not stamp.isdigit():
            raise WebhookRejected("malformed-webhook", "Cardgw-Signature has no t=<unix seconds>")
        if not given:
            raise WebhookRejected("bad-signature", "Cardgw-Signature has no v1 signature")
        expected = hmac.new(self.conn.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected.encode(), g.encode()) for g in given):
            raise WebhookRejected("bad-signature", "no v1 signature matches the body")
        check_fresh(int(stamp), now.timestamp(), self.conn.tolerance_seconds)

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        try:
            doc = json.loads(body)
            if doc.get("object") != "event":
                raise ValueError("not an event object")
            kind = KINDS[doc["type"]]
            obj: dict[str, Any] = doc["data"]["object"]
            return WebhookEvent(
                event_id=doc["id"], kind=kind, reference=obj["metadata"]["reference"],  # type: ignore[arg-type]
                psp_reference=obj["id"], amount=obj["amount"], currency=str(obj["currency"]).upper(),
                method=_method(obj.get("payment_method_details")) or _destination(obj.get("destination")),
                occurred_at=datetime.fromtimestamp(doc["created"], UTC), reason=_reason(obj))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, ValidationError) as exc:
            raise WebhookRejected("malformed-webhook", f"not a cardgw event: {type(exc).__name__}: {exc}") from None

    async def settlement_report(self, day: date) -> list[SettlementRow]:
        resp = await self.http.request("GET", "/v1/reports/settlement", operation="settlement_report",
                                       params={"date": day.isoformat()})
        reader = csv.DictReader(io.StringIO(resp.text))
        if reader.fieldnames != REPORT_COLUMNS:
            raise PspError(f"cardgw: unexpected settlement report columns {reader.fieldnames}")
        rows = []
        for n, r in enumerate(reader, start=2):
            try:
                rows.append(SettlementRow(
                    psp=self.name, psp_reference=r["source_id"], reference=r["metadata_reference"],
                    kind=CATEGORIES[r["reporting_category"]],  # type: ignore[arg-type]
                    amount=abs(int(r["gross"])), currency=r["currency"].upper(),
                    settled_at=datetime.strptime(r["created_utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)))
            except (KeyError, ValueError, ValidationError) as exc:
                raise PspError(f"cardgw: settlement report line {n} unreadable: {exc}") from exc
        return rows

    async def aclose(self) -> None:
        await self.http.aclose()
