"""Events published by `players`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gameplane.kit.events import Event

KycState = Literal["unverified", "pending", "verified", "rejected"]
# The documents a player may name for KYC (players' KycSubmit; the player site's form).
KycDocument = Literal["passport", "id_card", "driving_licence", "residence_permit"]


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
    """One limit as it is in force now (amounts in minor units of the player's currency; minutes
    for a session limit). A pending increase has `pending_value` and `pending_effective_at`; a
    pending removal has `pending_effective_at` alone, and `value` applies until then."""

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


# Internal API of players (service token, audience "players").
PATH_ELIGIBILITY = "/internal/players/{player_id}/eligibility"
PATH_PROTECTION = "/internal/players/{player_id}/protection"
PATH_PLAYER = "/internal/players/{player_id}"
PATH_KYC_DECISION = "/internal/players/{player_id}/kyc/decision"

EligibilityReason = Literal["self-excluded", "timed-out", "kyc-not-verified"]


class Eligibility(BaseModel):
    """What a player may do right now. Sessions check `can_play` before a launch, payments and
    wallet `can_deposit` / `can_withdraw`; `reasons` name every rule that currently blocks something."""

    player_id: uuid.UUID
    can_play: bool
    can_deposit: bool
    can_withdraw: bool
    reasons: list[EligibilityReason]
    kyc_state: KycState
    timeout_until: datetime | None = None
    self_excluded_until: datetime | None = None


class PlayerSummary(BaseModel):
    player_id: uuid.UUID
    email: str
    country: str
    currency: str
    date_of_birth: date
    kyc_state: KycState
    registered_at: datetime


class KycDecision(BaseModel):
    """A back-office decision on a pending KYC check: the route also needs a staff token with the
    role risk or admin (gameplane.kit.staff), and the decision is audited."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["verified", "rejected"]
    reason: str | None = Field(default=None, max_length=500)


class LimitView(BaseModel):
    kind: Literal["deposit", "loss", "session"]
    period: Literal["day", "week", "month", "session"]
    value: int
    pending_value: int | None = None
    pending_removal: bool = False
    pending_effective_at: datetime | None = None


class ProtectionView(BaseModel):
    """Answer of PATH_PROTECTION (and of the player's own GET /v1/players/me/protection): the
    responsible-gaming state now, with pending changes that came due already applied."""

    player_id: uuid.UUID
    revision: int
    jurisdiction: str
    currency: str
    limits: list[LimitView]
    cooling_off_seconds: int
    timeout_until: datetime | None
    self_excluded_until: datetime | None
    reality_check_minutes: int | None


DEVICE_HEADER = "X-Device-Id"  # a client's own device id, optional, sent with the login


class LoggedIn(Event):
    """A successful player login: where from (the client address the gateway saw, and the device
    id the client sent in `X-Device-Id`, if any). Risk links accounts that share them."""

    event_type = "players.logged_in"
    player_id: uuid.UUID
    ip: str | None = None
    device_id: str | None = None
    at: datetime
