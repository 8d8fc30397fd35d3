"""The affiliates service's API models, its problems and the events it publishes (`affiliates.*`).

`PlayerAttributed` is the seam analytics reads (a player's affiliate, for KPIs filtered by affiliate).

Public (through the gateway; the gateway lets these through without a player token):
  GET  /v1/affiliates/track/{link_code}?sub1..sub5=   302 to the link's landing URL + click_id
  GET  /v1/affiliates/me                              (header X-Api-Key: the affiliate's API key)
  GET  /v1/affiliates/me/links | /me/players?month= | /me/statements | /me/statements/{month}
       aggregates of the affiliate's own referred players under pseudonymous refs: no email,
       no name, no date of birth, no player id
Back office (service token backoffice + a staff token; reads support/finance/admin, writes
finance/admin; every write audited, GET /internal/affiliates/audit):
  POST /internal/affiliates/affiliates  AffiliateCreate -> AffiliateCreated (API key and postback
       secret shown once);  GET /internal/affiliates/affiliates[/{id}]
  PUT  /internal/affiliates/affiliates/{id}/deal  DealTerms -> AffiliateView
  PUT  /internal/affiliates/affiliates/{id}/active  ActiveRequest -> AffiliateView (an inactive
       affiliate's API key stops working and its clicks are no longer attributed)
  POST /internal/affiliates/affiliates/{id}/links LinkCreate -> LinkView
  GET  /internal/affiliates/affiliates/{id}/statements/{month}     (the open month computed now)
  POST /internal/affiliates/statements/{month}/close               closes a month for every affiliate
       (months close in order: 409 months-in-order otherwise)
  GET  /internal/affiliates/players/{player_id}                    the attribution of one player
  GET  /internal/affiliates/postbacks?state=                       the postback queue
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from gameplane.kit.events import Event
from gameplane.kit.money import MAX_AMOUNT_MINOR
from gameplane.kit.problems import ProblemType

PREFIX = "/v1/affiliates"
INTERNAL_PREFIX = "/internal/affiliates"
API_KEY_HEADER = "X-Api-Key"
SIGNATURE_HEADER = "X-Gameplane-Signature"
TIMESTAMP_HEADER = "X-Gameplane-Timestamp"
ATTRIBUTION_DAYS = 30
MAX_SUB_IDS = 5

PostbackKind = Literal["registration", "first_deposit", "qualification"]
ClickFlag = Literal["bot", "duplicate"]
Unattributed = Literal["no-click", "unknown-click", "flagged-click", "expired-click", "affiliate-inactive"]

LINK_NOT_FOUND = ProblemType(404, "link-not-found", "No such tracking link")
AFFILIATE_NOT_FOUND = ProblemType(404, "affiliate-not-found", "No such affiliate")
PLAYER_NOT_FOUND = ProblemType(404, "attribution-not-found", "No attribution recorded for this player")
API_KEY_INVALID = ProblemType(401, "api-key-invalid", "Missing or unknown affiliate API key")
INVALID_MONTH = ProblemType(422, "invalid-month", "A month is written YYYY-MM")
MONTH_NOT_OVER = ProblemType(409, "month-not-over", "A month can be closed only after it ended")
MONTH_CLOSED = ProblemType(409, "month-closed", "The month is closed already")
MONTHS_IN_ORDER = ProblemType(409, "months-in-order", "Months are closed in order, each after the one before")
INVALID_PARENT = ProblemType(422, "invalid-parent", "A sub-affiliate's parent must be a top-level affiliate")
INVALID_DEAL = ProblemType(422, "invalid-deal", "The deal terms are not consistent")
LINK_CODE_TAKEN = ProblemType(409, "link-code-taken", "Another link has this code")

_Amount = Field(default=0, ge=0, le=MAX_AMOUNT_MINOR)


class TierTerms(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_ngr: StrictInt = Field(ge=0, le=MAX_AMOUNT_MINOR, description="band start, inclusive, minor units")
    basis_points: StrictInt = Field(ge=0, le=10_000)


class DealTerms(BaseModel):
    """CPA (amount > 0), revenue share (bands), or both (hybrid). See gameplane.affiliates.deals."""

    model_config = ConfigDict(extra="forbid")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    cpa_amount: StrictInt = _Amount
    cpa_min_first_deposit: StrictInt = _Amount
    cpa_min_stakes: StrictInt = _Amount
    cpa_stakes_days: StrictInt = Field(default=30, ge=1, le=366)
    revshare: list[TierTerms] = Field(default_factory=list, max_length=20)
    carry_over: bool = True

    @model_validator(mode="after")
    def _bands(self) -> DealTerms:
        starts = [t.from_ngr for t in self.revshare]
        if self.revshare and (starts[0] != 0 or starts != sorted(set(starts))):
            raise ValueError("revenue-share bands must start at 0 and rise strictly")
        return self


class AffiliateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")
    parent_id: uuid.UUID | None = Field(default=None, description="makes this a sub-affiliate of that affiliate")
    override_bp: StrictInt = Field(default=0, ge=0, le=10_000, description="what the PARENT earns of this "
                                   "sub-affiliate's own commission, basis points (sub-affiliates only)")
    postback_url: AnyHttpUrl | None = None
    deal: DealTerms

    @model_validator(mode="after")
    def _override(self) -> AffiliateCreate:
        if self.override_bp and self.parent_id is None:
            raise ValueError("an override is set on a sub-affiliate (it is what its parent earns)")
        return self


class AffiliateView(BaseModel):
    affiliate_id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    postback_url: str | None
    deal: DealTerms
    active: bool
    created_at: datetime


class AffiliateCreated(AffiliateView):
    api_key: str = Field(description="shown once; only its hash is stored")
    postback_secret: str = Field(description="the HMAC key postbacks are signed with; shown once")


class ActiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool
    reason: str = Field(min_length=3, max_length=500)


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    landing_url: AnyHttpUrl
    code: str | None = Field(default=None, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class LinkView(BaseModel):
    link_id: uuid.UUID
    affiliate_id: uuid.UUID
    code: str
    landing_url: str
    created_at: datetime
    clicks: int = 0
    flagged_clicks: int = 0


class AttributionView(BaseModel):
    player_id: uuid.UUID
    player_ref: str
    affiliate_id: uuid.UUID | None
    click_id: str | None
    reason: Unattributed | None = Field(description="why not attributed (None: attributed)")
    registered_at: datetime
    first_deposit: int | None
    qualified_at: datetime | None


class StatementLineView(BaseModel):
    player_ref: str
    stakes: int
    wins: int
    ggr: int
    bonus_cost: int
    payment_fees: int
    ngr_before_tax: int
    cpa: int


class StatementView(BaseModel):
    affiliate_id: uuid.UUID
    month: str
    currency: str
    state: Literal["open", "closed"]
    lines: list[StatementLineView]
    stakes: int
    wins: int
    ggr: int
    bonus_cost: int
    payment_fees: int
    gaming_tax: int
    ngr: int
    carried_in: int
    net_ngr: int
    band_bp: int
    revshare: int
    cpa_count: int
    cpa: int
    own_commission: int
    override: int
    commission: int
    carry_out: int
    deal: DealTerms = Field(description="the deal the statement was computed with (a closed one keeps it)")
    tax_basis_points: int = Field(description="the gaming tax rate deducted from the month's GGR")
    closed_at: datetime | None = None


class PlayerAggregate(BaseModel):
    """What an affiliate sees of one referred player: a pseudonymous ref and money aggregates."""

    player_ref: str
    registered_on: date
    country: str
    currency: str
    first_deposit: int | None
    qualified: bool
    stakes: int
    ggr: int
    ngr_before_tax: int


class PostbackView(BaseModel):
    postback_id: uuid.UUID
    affiliate_id: uuid.UUID
    kind: PostbackKind
    state: Literal["pending", "acked"]
    attempts: int
    next_at: datetime | None
    last_error: str | None
    acked_at: datetime | None


class CloseResult(BaseModel):
    month: str
    closed: int = Field(description="statements closed now (one per affiliate)")


def parse_month(value: str) -> date:
    """'2026-11' -> date(2026, 11, 1); anything else raises INVALID_MONTH."""
    try:
        y, m = value.split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError(value)
        return date(int(y), int(m), 1)
    except ValueError:
        raise INVALID_MONTH(f"not a month: {value[:20]!r}") from None


class PlayerAttributed(Event):
    """A registration was attributed to the last click on one of an affiliate's links (30 days)."""

    event_type = "affiliates.player_attributed"
    player_id: uuid.UUID
    affiliate_id: uuid.UUID
    click_id: str
    link_id: uuid.UUID
    sub_ids: list[str] = Field(default_factory=list, max_length=5)
    country: str
    currency: str
    attributed_at: datetime


class PlayerQualified(Event):
    """A referred player met the affiliate's CPA qualification (once per player)."""

    event_type = "affiliates.player_qualified"
    player_id: uuid.UUID
    affiliate_id: uuid.UUID
    cpa_amount: int
    currency: str
    qualified_at: datetime


class StatementClosed(Event):
    """A month's statement of one affiliate is final (immutable from now on)."""

    event_type = "affiliates.statement_closed"
    affiliate_id: uuid.UUID
    month: str
    currency: str
    commission: int
    carry_out: int
    closed_at: datetime


class PostbackBody(BaseModel):
    """The JSON body of a server-to-server postback (signed, see docs/integration/affiliates.md)."""

    postback_id: uuid.UUID
    kind: PostbackKind
    affiliate_id: uuid.UUID
    click_id: str
    sub_ids: list[str]
    player_ref: str
    amount: int | None = None
    currency: str | None = None
    occurred_at: datetime

    @field_validator("sub_ids")
    @classmethod
    def _five(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_SUB_IDS:
            raise ValueError("at most five sub ids")
        return v
