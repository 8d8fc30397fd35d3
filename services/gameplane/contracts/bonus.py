"""The bonus service's API models, its problems and the events it publishes (`bonus.*`).

Player routes (through the gateway, /v1/bonus):
  GET  /v1/bonus/offers                         -> list[OfferView]   (live offers the player may take)
  POST /v1/bonus/offers/{offer_id}/opt-in       -> OptInView         (no_deposit / free_spins: granted now;
       deposit_match: granted at the next qualifying deposit; cashback: enrolled for the period)
  GET  /v1/bonus/grants                         -> list[GrantView]   (with wagering progress)
  POST /v1/bonus/grants/{grant_id}/forfeit      -> GrantView
Back office (service token backoffice + a staff token; reads: support, finance, admin; writes:
finance, admin; every write audited, GET /internal/bonus/audit):
  POST /internal/bonus/campaigns, GET /internal/bonus/campaigns
  POST /internal/bonus/campaigns/{campaign_id}/offers     OfferTerms -> OfferView (version 1)
  POST /internal/bonus/offers/{offer_id}/versions         OfferTerms -> OfferView (next version)
  POST /internal/bonus/offers/{offer_id}/publish          PublishRequest -> OfferView
  POST /internal/bonus/offers/{offer_id}/retire           -> OfferView
  GET  /internal/bonus/offers, GET /internal/bonus/offers/{offer_id}
  GET  /internal/bonus/grants?player_id=&state=, GET /internal/bonus/grants/{grant_id}
  POST /internal/bonus/grants                  ManualGrantRequest (with a reason) -> GrantView
  POST /internal/bonus/grants/{grant_id}/cancel CancelRequest (with a reason) -> GrantView
  PUT  /internal/bonus/players/{player_id}/segments  SegmentsRequest
  GET  /internal/bonus/reports/liability       -> LiabilityReport (by currency)

An offer version is immutable: changing terms makes a new version; publishing names the version
grants are made from (grants keep the version they were made from). Terms are checked against the
active jurisdiction profile (gameplane.contracts.jurisdiction) when a version is created.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from gameplane.kit.events import Event
from gameplane.kit.money import MAX_AMOUNT_MINOR, CurrencyError, max_amount
from gameplane.kit.problems import ProblemType

PREFIX = "/v1/bonus"
INTERNAL_PREFIX = "/internal/bonus"

OfferKind = Literal["deposit_match", "no_deposit", "free_spins", "cashback"]
WageringBase = Literal["bonus", "bonus_deposit"]
GrantState = Literal["issued", "active", "wagering", "completed", "converted", "expired", "cancelled", "forfeited"]
OfferState = Literal["draft", "live", "retired"]
IneligibleReason = Literal["country", "first-deposit-only", "segment", "already-granted", "self-excluded",
                           "timed-out", "player-unknown", "currency", "offer-not-live", "opt-in-required"]

CAMPAIGN_NOT_FOUND = ProblemType(404, "campaign-not-found", "No such campaign")
OFFER_NOT_FOUND = ProblemType(404, "offer-not-found", "No such offer or offer version")
OFFER_NOT_LIVE = ProblemType(409, "offer-not-live", "The offer is not live")
OFFER_BREAKS_JURISDICTION = ProblemType(422, "offer-breaks-jurisdiction",
                                        "The offer's terms break the active jurisdiction profile")
NOT_ELIGIBLE = ProblemType(403, "bonus-not-eligible", "The player is not eligible for this offer")
PLAYER_PROTECTED = ProblemType(403, "bonus-player-protected",
                               "The player is self-excluded or timed out: no bonus may be granted")
BONUS_GRANT_NOT_FOUND = ProblemType(404, "bonus-grant-not-found", "No such bonus grant")
BONUS_GRANT_CLOSED = ProblemType(409, "bonus-grant-closed", "The bonus grant is closed already")
ALREADY_OPTED_IN = ProblemType(409, "bonus-already-opted-in", "The player opted in to this offer already")

Amount = StrictInt


class Eligibility(BaseModel):
    model_config = ConfigDict(extra="forbid")

    countries: list[str] = Field(default_factory=list, description="ISO country codes; empty: every country")
    first_deposit_only: bool = Field(default=False, description="deposit_match: only on the player's first deposit")
    segments: list[str] = Field(default_factory=list, description="player segments (set by the back office); "
                                "empty: every player")
    opt_in_required: bool = Field(default=True, description="deposit_match: only players who opted in are "
                                  "matched (the others never hear of the offer)")


class OfferTerms(BaseModel):
    """The terms of one version of an offer. Amounts are minor units of `currency`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: OfferKind
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    match_pct: int | None = Field(default=None, ge=1, le=1000, description="deposit_match: % of the deposit")
    max_bonus: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR,
                                     description="deposit_match: cap of the bonus; cashback: cap of the payment")
    min_deposit: Amount = Field(default=1, gt=0, le=MAX_AMOUNT_MINOR, description="deposit_match")
    amount: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR, description="no_deposit: the bonus")
    cashout_cap: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR,
                                       description="at most this much reaches cash on conversion (no_deposit, "
                                       "free_spins); the rest goes back to the operator")
    game_id: str | None = Field(default=None, min_length=1, max_length=100, description="free_spins")
    spins: int | None = Field(default=None, ge=1, le=1000, description="free_spins")
    spin_stake: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR, description="free_spins")
    cashback_pct: int | None = Field(default=None, ge=1, le=100, description="cashback: % of net losses")
    period_days: int | None = Field(default=None, ge=1, le=90, description="cashback: the period after opt-in")
    wagering_multiplier: int = Field(default=0, ge=0, le=200,
                                     description="x times the base must be wagered before conversion; 0: none")
    wagering_base: WageringBase = "bonus"
    contributions: dict[str, int] | None = Field(
        default=None, description="% by game category; default gameplane.bonus.wagering.DEFAULT_CONTRIBUTIONS")
    max_stake: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR,
                                     description="the largest bet the wallet accepts while the grant is open")
    expiry_days: int = Field(default=30, ge=1, le=365)
    forfeit_on_withdrawal: bool = False
    priority: int = Field(default=0, ge=0, le=1_000_000, description="spend order among the player's grants")
    eligibility: Eligibility = Field(default_factory=Eligibility)

    @model_validator(mode="after")
    def _kind_fields(self) -> OfferTerms:
        need = {"deposit_match": ("match_pct", "max_bonus"), "no_deposit": ("amount",),
                "free_spins": ("game_id", "spins", "spin_stake"), "cashback": ("cashback_pct", "period_days")}
        missing = [f for f in need[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} offer needs {', '.join(missing)}")
        try:
            bound = max_amount(self.currency)
        except CurrencyError:
            raise ValueError(f"unsupported currency {self.currency}") from None
        for name in ("max_bonus", "min_deposit", "amount", "cashout_cap", "spin_stake", "max_stake"):
            value = getattr(self, name)
            if value is not None and value > bound:
                raise ValueError(f"{name} {value} is beyond the bound of {bound} minor units for {self.currency}")
        for category, pct in (self.contributions or {}).items():
            if not 0 <= pct <= 100 or not category:
                raise ValueError(f"contribution of {category!r} must be 0..100 %")
        return self


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class CampaignView(CampaignCreate):
    campaign_id: uuid.UUID
    created_at: datetime
    created_by: str


class OfferView(BaseModel):
    offer_id: uuid.UUID
    campaign_id: uuid.UUID
    state: OfferState
    live_version: int | None
    version: int = Field(description="the version shown (the live one, else the newest)")
    versions: int
    terms: OfferTerms


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version to put live")


class Progress(BaseModel):
    required: int = Field(description="contribution-weighted stakes to wager, minor units")
    wagered: int
    remaining: int


class GrantView(BaseModel):
    grant_id: uuid.UUID
    player_id: uuid.UUID
    offer_id: uuid.UUID
    offer_version: int
    kind: OfferKind
    currency: str
    amount: int = Field(description="bonus money granted (free spins: 0, their wins arrive later)")
    state: GrantState
    progress: Progress
    max_stake: int | None
    cashout_cap: int | None
    expires_at: datetime
    created_at: datetime
    closed_at: datetime | None
    converted: int | None = Field(default=None, description="what reached cash on conversion")
    reason: str | None = None
    wallet_pending: str | None = Field(default=None, description="a wallet call still to be made (retried)")


class OptInView(BaseModel):
    offer_id: uuid.UUID
    player_id: uuid.UUID
    opted_in_at: datetime
    grant: GrantView | None = None


class ManualGrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    player_id: uuid.UUID
    offer_id: uuid.UUID
    amount: Amount | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR,
                                  description="deposit_match / cashback: the bonus (no deposit to match)")
    reason: str = Field(min_length=3, max_length=500)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class SegmentsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segments: list[str] = Field(max_length=50)


class CurrencyLiability(BaseModel):
    currency: str
    open_grants: int
    open_granted: int = Field(description="bonus money granted to open grants (their wallet balance is at most this)")
    granted: int
    converted_grants: int
    converted: int
    forfeited_grants: int = Field(description="forfeited, expired and cancelled")


class LiabilityReport(BaseModel):
    at: datetime
    currencies: list[CurrencyLiability]


# ---- events (subject gameplane.bonus.<name>) ------------------------------------------------------

class OfferPublished(Event):
    event_type = "bonus.offer_published"
    offer_id: uuid.UUID
    campaign_id: uuid.UUID
    version: int
    terms: OfferTerms
    published_by: str


class _GrantEvent(Event):
    grant_id: uuid.UUID
    player_id: uuid.UUID
    offer_id: uuid.UUID
    currency: str
    at: datetime


class Granted(_GrantEvent):
    event_type = "bonus.granted"
    offer_version: int
    kind: OfferKind
    amount: int
    wagering_required: int


class Progressed(_GrantEvent):
    """Coalesced: at most one per grant per batch of settled bets, with the totals after it."""

    event_type = "bonus.progressed"
    wagered: int
    required: int


class Completed(_GrantEvent):
    event_type = "bonus.completed"
    wagered: int


class Converted(_GrantEvent):
    event_type = "bonus.converted"
    cash: int


class Forfeited(_GrantEvent):
    event_type = "bonus.forfeited"
    reason: str


class Expired(_GrantEvent):
    event_type = "bonus.expired"


class Cancelled(_GrantEvent):
    event_type = "bonus.cancelled"
    reason: str
    actor: str
