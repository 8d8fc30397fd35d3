"""The two wire dialects of the simulated PSP: how an event, a signature and a settlement report look.

simpsp, the simulator's own: JSON events {"id", "type": "session.paid", "created_at": ISO, "data": {...}}
with amounts in minor units; headers X-Psp-Timestamp (unix) and X-Psp-Signature (base64 of
HMAC-SHA256 over "<timestamp>\\n<body>"); a report in major units ("10.50").

cardgw, shaped like a common card gateway: event objects {"id": "evt_..", "object": "event",
"type": "payment_intent.succeeded", "created": unix, "data": {"object": {...}}}, lower-case currencies,
header Cardgw-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">; a balance-transaction style
report with signed gross amounts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
from decimal import Decimal
from typing import Any

from gameplane.kit.money import exponent
from gameplane.simulators.psp.store import Adjustment, Event, Method, Payment, Payout, Settlement

SIMPSP_TYPES = {"payment.succeeded": "session.paid", "payment.failed": "session.declined",
                "payment.expired": "session.expired", "payout.paid": "payout.completed",
                "payout.failed": "payout.rejected", "chargeback": "dispute.lost", "refund": "refund.settled"}
CARDGW_TYPES = {"payment.succeeded": "payment_intent.succeeded", "payment.failed": "payment_intent.payment_failed",
                "payment.expired": "payment_intent.canceled", "payout.paid": "payout.paid",
                "payout.failed": "payout.failed", "chargeback": "charge.dispute.funds_withdrawn",
                "refund": "charge.refunded"}


def _simpsp_method(m: Method | None) -> dict[str, Any] | None:
    return None if m is None else {"type": m.type, "fingerprint": m.fingerprint, "label": m.label}


def simpsp_event(ev: Event) -> dict[str, Any]:
    s = ev.subject
    data: dict[str, Any]
    if isinstance(s, Payment):
        data = {"session_id": s.psp_reference, "reference": s.reference, "player_id": s.player_id,
                "amount_minor": s.amount, "currency": s.currency, "status": s.status,
                "instrument": _simpsp_method(s.method), "reason": s.reason}
    elif isinstance(s, Payout):
        data = {"payout_id": s.psp_reference, "reference": s.reference, "player_id": s.player_id,
                "amount_minor": s.amount, "currency": s.currency, "status": s.status,
                "instrument": _simpsp_method(s.method), "reason": s.reason}
    else:
        data = {f"{'dispute' if s.kind == 'chargeback' else 'refund'}_id": s.psp_reference,
                "session_id": s.payment.psp_reference, "reference": s.payment.reference,
                "player_id": s.payment.player_id, "amount_minor": s.amount, "currency": s.payment.currency,
                "instrument": _simpsp_method(s.payment.method), "reason": s.reason}
    return {"id": ev.event_id, "type": SIMPSP_TYPES[ev.kind],
            "created_at": ev.occurred_at.isoformat().replace("+00:00", "Z"), "data": data}


def _cardgw_method(m: Method | None) -> dict[str, Any] | None:
    if m is None:
        return None
    if m.type == "card":
        return {"type": "card", "card": {"brand": m.brand, "last4": m.last4, "fingerprint": m.fingerprint}}
    return {"type": m.type, m.type: {"fingerprint": m.fingerprint, "account": m.label.split(" ", 1)[-1]}}


def cardgw_intent(p: Payment, redirect_url: str | None = None) -> dict[str, Any]:
    status = {"open": "requires_payment_method", "succeeded": "succeeded", "failed": "requires_payment_method",
              "expired": "canceled"}[p.status]
    obj: dict[str, Any] = {
        "id": p.psp_reference, "object": "payment_intent", "amount": p.amount, "currency": p.currency.lower(),
        "status": status, "created": int(p.created_at.timestamp()), "expires_at": int(p.expires_at.timestamp()),
        "metadata": {"reference": p.reference, "player_id": p.player_id},
        "payment_method_details": _cardgw_method(p.method),
        "last_payment_error": {"code": p.reason, "message": f"The payment failed: {p.reason}"}
        if p.status == "failed" else None,
        "cancellation_reason": "expired" if p.status == "expired" else None,
    }
    if redirect_url is not None and p.status == "open":
        obj["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {"url": redirect_url,
                                                                             "return_url": p.return_url}}
    return obj


def cardgw_payout(po: Payout) -> dict[str, Any]:
    return {"id": po.psp_reference, "object": "payout", "amount": po.amount, "currency": po.currency.lower(),
            "status": po.status, "created": int(po.created_at.timestamp()),
            "destination": {"fingerprint": po.method.fingerprint, "type": po.method.type, "label": po.method.label},
            "failure_code": po.reason if po.status == "failed" else None,
            "metadata": {"reference": po.reference, "player_id": po.player_id}}


def _cardgw_adjustment(a: Adjustment) -> dict[str, Any]:
    return {"id": a.psp_reference, "object": "dispute" if a.kind == "chargeback" else "refund",
            "amount": a.amount, "currency": a.payment.currency.lower(), "payment_intent": a.payment.psp_reference,
            "reason": a.reason, "created": int(a.created_at.timestamp()),
            "payment_method_details": _cardgw_method(a.payment.method),
            "metadata": {"reference": a.payment.reference, "player_id": a.payment.player_id}}


def cardgw_event(ev: Event) -> dict[str, Any]:
    s = ev.subject
    obj = cardgw_intent(s) if isinstance(s, Payment) else cardgw_payout(s) if isinstance(s, Payout) \
        else _cardgw_adjustment(s)
    return {"id": ev.event_id, "object": "event", "api_version": "2024-06-20", "type": CARDGW_TYPES[ev.kind],
            "created": int(ev.occurred_at.timestamp()), "livemode": False, "data": {"object": obj}}


def event_body(ev: Event) -> bytes:
    doc = simpsp_event(ev) if ev.dialect == "simpsp" else cardgw_event(ev)
    return json.dumps(doc, separators=(",", ":")).encode()


def sign(dialect: str, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature headers of one delivery attempt (signed afresh at each attempt)."""
    if dialect == "simpsp":
        mac = hmac.new(secret.encode(), f"{timestamp}\n".encode() + body, hashlib.sha256).digest()
        return {"X-Psp-Timestamp": str(timestamp), "X-Psp-Signature": base64.b64encode(mac).decode()}
    mac_hex = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Cardgw-Signature": f"t={timestamp},v1={mac_hex}"}


def _major(amount: int, currency: str) -> str:
    exp = exponent(currency)
    return f"{Decimal(amount).scaleb(-exp):.{exp}f}"


CARDGW_CATEGORY = {"deposit": "charge", "payout": "payout", "refund": "refund", "chargeback": "dispute",
                   "fee": "fee"}


def settlement_csv(dialect: str, rows: list[Settlement]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if dialect == "simpsp":
        w.writerow(["settled_at", "type", "reference", "psp_reference", "amount", "currency"])
        for r in rows:
            w.writerow([r.at.isoformat().replace("+00:00", "Z"), r.kind.upper(), r.reference, r.psp_reference,
                        _major(r.amount, r.currency), r.currency])
    else:
        w.writerow(["id", "reporting_category", "source_id", "metadata_reference", "gross", "currency",
                    "created_utc"])
        for r in rows:
            gross = r.amount if r.kind == "deposit" else -r.amount
            w.writerow([f"txn_{r.psp_reference.split('_', 1)[-1]}", CARDGW_CATEGORY[r.kind], r.psp_reference,
                        r.reference, gross, r.currency.lower(), r.at.strftime("%Y-%m-%d %H:%M:%S")])
    return out.getvalue()
