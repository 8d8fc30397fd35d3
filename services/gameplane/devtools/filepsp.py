"""A PSP adapter for bench/payments (the system tests use the real simulator), loaded into a real
payments process through `GP_PAYMENTS_ADAPTER_MODULES=["gameplane.devtools.filepsp"]`.

Stateless, so the test (playing the PSP) and the payments process agree without sharing memory:
PSP references derive from our reference and the secret, webhooks carry an HMAC over
`<timestamp>.<body>`, and the settlement report is the CSV the test writes to the directory named
by `base_url` (file://...). A stand-in for the psp simulator until it is merged.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gameplane.payments.adapters.base import (
    PaymentMethod,
    PaymentRequest,
    PaymentSession,
    PayoutAccepted,
    PayoutRequest,
    SettlementRow,
    WebhookEvent,
    WebhookRejected,
)

HEADER = "x-filepsp-signature"


class FilePsp:
    def __init__(self, name: str, settings: Any) -> None:
        """`settings`: base_url (file://<directory of the settlement CSVs>) and secret."""
        self.name = name
        self.secret = settings.secret
        self.dir = Path(settings.base_url.removeprefix("file://"))

    def psp_reference(self, reference: str) -> str:
        return "fp_" + hashlib.sha256(f"{self.secret}:{reference}".encode()).hexdigest()[:20]

    async def create_payment(self, req: PaymentRequest) -> PaymentSession:
        ref = self.psp_reference(req.reference)
        return PaymentSession(psp_reference=ref, redirect_url=f"https://filepsp.test/pay/{ref}",
                              expires_at=req.expires_at)

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted:
        return PayoutAccepted(psp_reference=self.psp_reference(req.reference), status="pending")

    def sign(self, body: bytes, at: datetime | None = None) -> dict[str, str]:
        ts = int((at or datetime.now(UTC)).timestamp())
        mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {HEADER: f"t={ts},v1={mac}", "content-type": "application/json"}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        raw = {k.lower(): v for k, v in headers.items()}.get(HEADER, "")
        try:
            parts = dict(p.split("=", 1) for p in raw.split(","))
            ts = int(parts["t"])
        except (ValueError, KeyError):
            raise WebhookRejected("bad-signature") from None
        want = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts.get("v1", "")):
            raise WebhookRejected("bad-signature")
        if abs(now.timestamp() - ts) > 300:
            raise WebhookRejected("stale-webhook")

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        d = json.loads(body)
        m = d.get("method")
        return WebhookEvent(event_id=d["id"], kind=d["type"], reference=d["reference"],
                            psp_reference=d["psp_reference"], amount=int(d["amount"]), currency=d["currency"],
                            method=PaymentMethod(**m) if m else None,
                            occurred_at=datetime.fromisoformat(d["occurred_at"]), reason=d.get("reason"))

    async def settlement_report(self, day: date) -> list[SettlementRow]:
        path = self.dir / f"settlement-{day.isoformat()}.csv"
        if not path.exists():
            return []
        with path.open() as f:
            return [SettlementRow(psp=self.name, psp_reference=r["psp_reference"], reference=r["reference"],
                                  kind=r["kind"], amount=int(r["amount"]), currency=r["currency"],  # type: ignore[arg-type]
                                  settled_at=datetime.fromisoformat(r["settled_at"])) for r in csv.DictReader(f)]


ADAPTERS = {"filepsp": FilePsp}
