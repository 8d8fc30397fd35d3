"""Request and answer models of the risk service's back-office routes (the decision route's are
contracts: gameplane.contracts.risk)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gameplane.contracts.risk import CaseOutcome, DecisionKind
from gameplane.risk.rules import RuleSet

# withdrawn: what it reviewed was cancelled (by the player) before anyone decided
CaseState = Literal["open", "approved", "rejected", "withdrawn"]
_Text = Field(min_length=3, max_length=500, pattern=r"^[^\x00]+$")


class CaseView(BaseModel):
    case_id: uuid.UUID
    decision_id: uuid.UUID
    kind: DecisionKind
    reference: str
    player_id: uuid.UUID
    amount: int
    currency: str
    score: int
    rules: list[str]
    state: CaseState
    opened_at: datetime
    assignee: str | None
    assigned_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None


class CasePage(BaseModel):
    """Oldest first; pass `next_cursor` as `cursor` for the next page, null at the end."""

    cases: list[CaseView]
    next_cursor: str | None


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]+$",
                                 description="a staff username; default: the staff member calling")


class CaseDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: CaseOutcome
    reason: str = _Text


class RuleSetVersionView(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    reason: str
    active: bool


class RuleSetVersionDetail(RuleSetVersionView):
    document: dict[str, Any]


class PublishRuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: RuleSet
    reason: str = _Text
    based_on: int | None = Field(default=None, ge=1, le=2**31 - 1, description="the version this change was "
                                 "made from; refused (409) when another version was published since")


class WindowView(BaseModel):
    feature: str
    window: str
    count: int
    total: int


class PlayerRiskView(BaseModel):
    player_id: uuid.UUID
    harm_score: int
    harm_rules: list[str]
    harm_at: datetime | None
    windows: list[WindowView]
    deposit_methods: int
    last_deposit_amount: int | None
    last_deposit_at: datetime | None
    wagered_since_deposit: int
    won_since_deposit: int
    last_ip: str | None
    last_device: str | None
    open_cases: int
