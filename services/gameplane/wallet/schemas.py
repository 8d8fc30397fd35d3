"""Read models of the wallet's own API (money operations use gameplane.contracts.wallet)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gameplane.contracts.wallet import Balance


class Balances(BaseModel):
    player_id: uuid.UUID
    balances: list[Balance]


class EntryView(BaseModel):
    account: str = Field(description="owner:kind:currency[:shard]")
    amount: int


class TransactionView(BaseModel):
    id: uuid.UUID
    seq: int
    kind: str
    idempotency_key: str
    player_id: uuid.UUID | None
    currency: str
    amount: int
    cash: int
    bonus: int
    reverses: uuid.UUID | None
    details: dict[str, Any]
    created_at: datetime
    entries: list[EntryView] | None = None


class HistoryPage(BaseModel):
    items: list[TransactionView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")


class Breach(BaseModel):
    invariant: int
    detail: str


class ReconciliationReport(BaseModel):
    ok: bool
    checked_at: datetime
    transactions: int
    entries: int
    accounts: int
    breaches: list[Breach]


class SweepResult(BaseModel):
    expired: list[uuid.UUID]


class Movement(BaseModel):
    idempotency_key: str
    kind: str
    player_id: uuid.UUID | None
    currency: str
    amount: int
    created_at: datetime


class Movements(BaseModel):
    items: list[Movement]
