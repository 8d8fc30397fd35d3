"""The risk service's internal API (called by payments) and the events it publishes.

  POST /internal/risk/decisions   DecisionRequest -> Decision   (service token: payments)

A decision is taken once per (kind, reference): asking again with the same reference answers the
stored decision (a retry after a timeout never gets a second opinion). A `review` opens a case;
its outcome comes later as `risk.case_decided` (approve: go on; reject: stop and give the money
back). Events: subjects `gameplane.risk.<name>`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from gameplane.kit.events import Event
from gameplane.kit.money import MAX_AMOUNT_MINOR

PATH_DECISIONS = "/internal/risk/decisions"

DecisionKind = Literal["deposit", "withdrawal"]
Outcome = Literal["allow", "review", "deny"]
CaseOutcome = Literal["approve", "reject"]
MAX_SCORE = 1000

class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DecisionKind
    player_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT_MINOR, description="minor units")
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")
    reference: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$",
                           description="the payment's reference at payments; one decision per (kind, reference)")
    method_fingerprint: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    ip: str | None = Field(default=None, max_length=100, pattern=r"^[^\x00]*$")
    device_id: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")


class Decision(BaseModel):
    decision_id: uuid.UUID
    decision: Outcome
    score: int = Field(ge=0, le=MAX_SCORE)
    rules: list[str] = Field(description="ids of the rules that fired, in the rule set's order")
    rules_version: int
    case_id: uuid.UUID | None = None


class Decided(Event):
    """Every decision, with the request it answered."""

    event_type = "risk.decided"
    decision: Decision
    request: DecisionRequest
    decided_at: datetime


class CaseOpened(Event):
    event_type = "risk.case_opened"
    case_id: uuid.UUID
    decision_id: uuid.UUID
    kind: DecisionKind
    reference: str
    player_id: uuid.UUID
    amount: int
    currency: str
    score: int
    rules: list[str]
    opened_at: datetime


class CaseDecided(Event):
    """A reviewer's verdict. Payments releases (approve) or rejects (reject) what waits on it."""

    event_type = "risk.case_decided"
    case_id: uuid.UUID
    reference: str
    kind: DecisionKind
    player_id: uuid.UUID
    outcome: CaseOutcome
    decided_by: str
    reason: str
