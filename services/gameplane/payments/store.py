"""Reads and writes of payment rows, shared by the flows, the sweeper and the routes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import payments as c
from gameplane.kit.db import Database
from gameplane.payments.models import payments, webhook_rejections


async def get(s: AsyncSession, payment_id: uuid.UUID, *, lock: bool = False) -> RowMapping | None:
    q = select(payments).where(payments.c.id == payment_id)
    if lock:
        q = q.with_for_update()
    return (await s.execute(q)).mappings().first()


async def by_reference(s: AsyncSession, reference: str, *, lock: bool = False) -> RowMapping | None:
    q = select(payments).where(payments.c.reference == reference)
    if lock:
        q = q.with_for_update()
    return (await s.execute(q)).mappings().first()


async def change(s: AsyncSession, payment_id: uuid.UUID, now: datetime, **values: Any) -> None:
    await s.execute(update(payments).where(payments.c.id == payment_id).values(updated_at=now, **values))


def view(row: RowMapping) -> c.PaymentView:
    return c.PaymentView(
        id=row["id"], reference=row["reference"], kind=row["kind"], state=row["state"], player_id=row["player_id"],
        amount=row["amount"], currency=row["currency"], psp=row["psp"], psp_reference=row["psp_reference"],
        method_fingerprint=row["method_fingerprint"], redirect_url=row["redirect_url"], expires_at=row["expires_at"],
        held_reason=row["held_reason"], credited=row["credited"], created_at=row["created_at"],
        updated_at=row["updated_at"])


async def reject_webhook(db: Database, psp: str, code: str, detail: str, body: bytes, now: datetime, *,
                         event_id: str | None = None, reference: str | None = None) -> None:
    """The record of a refused webhook, in its own transaction (the refusal rolls back everything else)."""
    async with db.transaction() as s:
        await s.execute(insert(webhook_rejections).values(
            psp=psp[:40], code=code, detail=detail[:2000], event_id=(event_id or None) and event_id[:200],
            reference=(reference or None) and reference[:200], body_sha256=hashlib.sha256(body).hexdigest(),
            received_at=now))
