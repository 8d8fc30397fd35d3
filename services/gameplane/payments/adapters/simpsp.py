"""Adapter of simpsp, the bundled PSP simulator's own dialect.

API: JSON, X-Psp-Api-Key; POST /sessions, POST /payouts, GET /reports/settlement?date= (CSV, major
units). Webhooks: {"id", "type": "session.paid", "created_at", "data": {...}}, headers X-Psp-Timestamp
and X-Psp-Signature = base64(HMAC-SHA256(secret, "<timestamp>\\n" + body)).
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from gameplane.kit.money import CurrencyError, Money
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

KINDS = {"session.paid": "payment.succeeded", "session.declined": "payment.failed",
         "session.expired": "payment.expired", "payout.completed": "payout.paid", "payout.rejected": "payout.failed",
         "dispute.lost": "chargeback", "refund.settled": "refund"}
# The id field that is the PSP's reference of the thing the event is about.
ID_FIELD = {"payment.succeeded": "session_id", "payment.failed": "session_id", "payment.expired": "session_id",
            "payout.paid": "payout_id", "payout.failed": "payout_id", "chargeback": "dispute_id",
            "refund": "refund_id"}
REPORT_COLUMNS = ["settled_at", "type", "reference", "psp_reference", "amount", "currency"]


class SimpspAdapter:
    name = "simpsp"

    def __init__(self, conn: PspConnection, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.conn = conn
        self.http = PspHttp(self.name, conn, transport, headers={"X-Psp-Api-Key": conn.api_key})

    async def create_payment(self, req: PaymentRequest) -> PaymentSession:
        resp = await self.http.request("POST", "/sessions", operation="create_payment", json={
            "reference": req.reference, "player_id": req.player_id, "amount_minor": req.amount,
            "currency": req.currency, "return_url": req.return_url, "expires_at": req.expires_at.isoformat()})
        body = resp.json()
        return PaymentSession(psp_reference=body["session_id"], redirect_url=body["hosted_url"],
                              expires_at=body["expires_at"])

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted:
        resp = await self.http.request("POST", "/payouts", operation="create_payout", json={
            "reference": req.reference, "player_id": req.player_id, "amount_minor": req.amount,
            "currency": req.currency, "instrument": req.method.model_dump()})
        return PayoutAccepted(psp_reference=resp.json()["payout_id"])

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        h = lower_headers(headers)
        stamp, signature = h.get("x-psp-timestamp"), h.get("x-psp-signature")
        if not signature:
            raise WebhookRejected("bad-signature", "no X-Psp-Signature header")
        if not stamp or not stamp.strip().isdigit():
            raise WebhookRejected("malformed-webhook", "X-Psp-Timestamp must be unix seconds")
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected("bad-signature", "X-Psp-Signature is not base64") from None
        expected = hmac.new(self.conn.secret.encode(), f"{stamp.strip()}\n".encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(given, expected):
            raise WebhookRejected("bad-signature", "signature does not match the body")
        check_fresh(int(stamp), now.timestamp(), self.conn.tolerance_seconds)

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        try:
            doc = json.loads(body)
            kind = KINDS[doc["type"]]
            data: dict[str, Any] = doc["data"]
            inst = data.get("instrument")
            return WebhookEvent(
                event_id=doc["id"], kind=kind, reference=data["reference"],  # type: ignore[arg-type]
                psp_reference=data[ID_FIELD[kind]], amount=data["amount_minor"], currency=data["currency"],
                method=PaymentMethod.model_validate(inst) if inst else None, occurred_at=doc["created_at"],
                reason=data.get("reason"))
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise WebhookRejected("malformed-webhook", f"not a simpsp event: {type(exc).__name__}: {exc}") from None

    async def settlement_report(self, day: date) -> list[SettlementRow]:
        resp = await self.http.request("GET", "/reports/settlement", operation="settlement_report",
                                       params={"date": day.isoformat()})
        reader = csv.DictReader(io.StringIO(resp.text))
        if reader.fieldnames != REPORT_COLUMNS:
            raise PspError(f"simpsp: unexpected settlement report columns {reader.fieldnames}")
        rows = []
        for n, r in enumerate(reader, start=2):
            try:
                rows.append(SettlementRow(
                    psp=self.name, psp_reference=r["psp_reference"], reference=r["reference"],
                    kind=r["type"].lower(),  # type: ignore[arg-type]
                    amount=Money.parse(r["amount"], r["currency"]).amount_minor, currency=r["currency"],
                    settled_at=r["settled_at"]))
            except (ValueError, CurrencyError, ValidationError) as exc:
                raise PspError(f"simpsp: settlement report line {n} unreadable: {exc}") from exc
        return rows

    async def aclose(self) -> None:
        await self.http.aclose()
