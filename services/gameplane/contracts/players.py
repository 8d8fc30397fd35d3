"""Events published by `players`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from gameplane.kit.events import Event

KycState = Literal["unverified", "pending", "verified", "rejected"]


class PlayerRegistered(Event):
    event_type = "players.registered"
    player_id: uuid.UUID
    email: str
    country: str
    currency: str
    date_of_birth: date
    registered_at: datetime
    affiliate_click_id: str | None = None


class KycChanged(Event):
    event_type = "players.kyc_changed"
    player_id: uuid.UUID
    previous: KycState
    state: KycState
    reason: str | None = None


class LimitState(BaseModel):
    """One limit as it is in force now (amounts in minor units of the player's currency)."""

    kind: Literal["deposit", "loss", "session"]
    period: Literal["day", "week", "month", "session"]
    value: int
    pending_value: int | None = None
    pending_effective_at: datetime | None = None


class ProtectionChanged(Event):
    """A full snapshot of a player's responsible-gaming state. `revision` increases with every
    change, so a consumer keeps the highest revision it saw and ignores older snapshots."""

    event_type = "players.protection_changed"
    player_id: uuid.UUID
    revision: int
    currency: str
    limits: list[LimitState]
    timeout_until: datetime | None = None
    self_excluded_until: datetime | None = None
    reality_check_minutes: int | None = None
    reason: str


class SelfExcluded(Event):
    """Also published on its own so sessions can end open sessions and marketing can stop."""

    event_type = "players.self_excluded"
    player_id: uuid.UUID
    until: datetime


class TimedOut(Event):
    event_type = "players.timed_out"
    player_id: uuid.UUID
    until: datetime
