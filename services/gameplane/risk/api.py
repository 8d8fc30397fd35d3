"""Routes of the risk service.

internal     POST /internal/risk/decisions                   (service token: payments)
back office  /internal/risk/cases..., /players/{id}, /rule-sets..., /audit
             (service token: backoffice, plus a staff token with the role risk or admin; audit: admin)
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, select, text, tuple_

from gameplane.contracts.risk import PATH_DECISIONS, CaseDecided, Decision, DecisionRequest
from gameplane.kit import audit
from gameplane.kit.app import Runtime
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.auth import callers
from gameplane.kit.db import utcnow
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, json_reply
from gameplane.kit.outbox import publish
from gameplane.kit.problems import ProblemType
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff
from gameplane.risk import decisions
from gameplane.risk.features import MINUTE_SPAN, SHORT_WINDOWS, WINDOWS, window_cutoffs
from gameplane.risk.models import Case, DepositMethod, FeatureBucket, PlayerFeatures, RuleSetVersion
from gameplane.risk.rulesets import RuleCache
from gameplane.risk.schemas import (
    AssignRequest,
    CaseDecisionRequest,
    CasePage,
    CaseState,
    CaseView,
    PlayerRiskView,
    PublishRuleSet,
    RuleSetVersionDetail,
    RuleSetVersionView,
    WindowView,
)

CASE_NOT_FOUND = ProblemType(404, "case-not-found", "No such review case")
CASE_CLOSED = ProblemType(409, "case-closed", "The review case is decided already")
RULE_SET_NOT_FOUND = ProblemType(404, "rule-set-not-found", "No such rule set version")
RULE_SET_CONFLICT = ProblemType(409, "rule-set-conflict", "Another rule set version was published meanwhile")
INVALID_CURSOR = ProblemType(400, "invalid-cursor", "Invalid cursor")

internal = APIRouter(prefix="/internal/risk", tags=["internal"])
backoffice = APIRouter(prefix="/internal/risk", tags=["back office"], dependencies=[Depends(callers("backoffice"))])
REVIEWERS = staff("risk", "admin")
PAYMENTS = callers("payments")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _cache(request: Request) -> RuleCache:
    return _rt(request).state["rules"]  # type: ignore[no-any-return]


@internal.post(PATH_DECISIONS.removeprefix("/internal/risk"), response_model=Decision,
               responses=refusals(decisions.DECISION_CONFLICT))
async def decide(body: DecisionRequest, request: Request, caller: str = Depends(PAYMENTS)) -> Decision:
    """Allow, review or deny a deposit or withdrawal. One decision per (kind, reference): asking
    again answers the stored one. A `review` opens a case (`case_id`)."""
    return await decisions.decide(_rt(request).database, _cache(request), body)


def fast_routes(rt: Runtime) -> list[FastRoute]:
    """The decision route also answered ahead of FastAPI (gameplane.kit.fastroutes): same auth,
    validation and problems, a fifth less CPU. The FastAPI route above stays its description."""
    async def handle(request: FastRequest) -> Reply:
        decision = await decisions.decide(rt.database, rt.state["rules"], request.data)
        return json_reply(decision.model_dump_json().encode())

    return [FastRoute("POST", PATH_DECISIONS, handle, model=DecisionRequest, callers=PAYMENTS.allowed)]


def case_view(row: Case) -> CaseView:
    return CaseView(case_id=row.id, decision_id=row.decision_id, kind=row.kind,  # type: ignore[arg-type]
                    reference=row.reference, player_id=row.player_id, amount=row.amount, currency=row.currency,
                    score=row.score, rules=list(row.rules), state=row.state,  # type: ignore[arg-type]
                    opened_at=row.opened_at, assignee=row.assignee, assigned_at=row.assigned_at,
                    decided_at=row.decided_at, decided_by=row.decided_by, reason=row.reason)


@backoffice.get("/cases", response_model=CasePage, responses=refusals(INVALID_CURSOR))
async def list_cases(request: Request, _who: StaffContext = Depends(REVIEWERS),
                     state: CaseState | None = None,
                     assignee: str | None = Query(None, max_length=200, pattern=r"^[^\x00]+$"),
                     cursor: uuid.UUID | None = None, limit: int = Query(50, ge=1, le=500)) -> CasePage:
    """Review cases, oldest first, filtered by state and assignee."""
    q = select(Case).order_by(Case.opened_at, Case.id).limit(limit + 1)
    if state is not None:
        q = q.where(Case.state == state)
    if assignee is not None:
        q = q.where(Case.assignee == assignee)
    async with _rt(request).database.session() as s:
        if cursor is not None:
            after = (await s.execute(select(Case.opened_at, Case.id).where(Case.id == cursor))).first()
            if after is None:
                raise INVALID_CURSOR("the cursor names no case")
            q = q.where(tuple_(Case.opened_at, Case.id) > tuple_(after[0], after[1]))
        rows = (await s.scalars(q)).all()
    page = [case_view(r) for r in rows[:limit]]
    return CasePage(cases=page, next_cursor=str(page[-1].case_id) if len(rows) > limit else None)


@backoffice.get("/cases/{case_id}", response_model=CaseView, responses=refusals(CASE_NOT_FOUND))
async def get_case(case_id: uuid.UUID, request: Request, _who: StaffContext = Depends(REVIEWERS)) -> CaseView:
    async with _rt(request).database.session() as s:
        row = await s.get(Case, case_id)
    if row is None:
        raise CASE_NOT_FOUND()
    return case_view(row)


@backoffice.post("/cases/{case_id}/assign", response_model=CaseView, responses=refusals(CASE_NOT_FOUND, CASE_CLOSED))
async def assign_case(case_id: uuid.UUID, body: AssignRequest, request: Request,
                      who: StaffContext = Depends(REVIEWERS)) -> CaseView:
    """Give an open case to a reviewer (by default the caller). Audited."""
    now = utcnow()
    async with _rt(request).database.transaction() as s:
        row = await s.get(Case, case_id, with_for_update=True)
        if row is None:
            raise CASE_NOT_FOUND()
        if row.state != "open":
            raise CASE_CLOSED(f"the case was {row.state} at {row.decided_at.isoformat() if row.decided_at else '?'}")
        before = {"assignee": row.assignee}
        row.assignee = body.assignee or who.username
        row.assigned_at = now
        await audit.record(s, Actor.of(who), "risk.case_assigned", target_of("case", row.id), before,
                           {"assignee": row.assignee}, at=now)
        return case_view(row)


@backoffice.post("/cases/{case_id}/decision", response_model=CaseView,
                 responses=refusals(CASE_NOT_FOUND, CASE_CLOSED))
async def decide_case(case_id: uuid.UUID, body: CaseDecisionRequest, request: Request,
                      who: StaffContext = Depends(REVIEWERS)) -> CaseView:
    """Approve or reject an open case, with a reason: `risk.case_decided` tells payments, which
    releases (approve) or rejects (reject) what waits on it. Decided once; audited."""
    now = utcnow()
    async with _rt(request).database.transaction() as s:
        row = await s.get(Case, case_id, with_for_update=True)
        if row is None:
            raise CASE_NOT_FOUND()
        if row.state != "open":
            raise CASE_CLOSED(f"the case was {row.state} by {row.decided_by}")
        row.state = "approved" if body.outcome == "approve" else "rejected"
        row.decided_at = now
        row.decided_by = who.actor
        row.reason = body.reason
        if row.assignee is None:
            row.assignee, row.assigned_at = who.username, now
        await publish(s, CaseDecided(case_id=row.id, reference=row.reference, kind=row.kind,  # type: ignore[arg-type]
                                     player_id=row.player_id, outcome=body.outcome, decided_by=who.actor,
                                     reason=body.reason), producer=decisions.PRODUCER)
        await audit.record(s, Actor.of(who), "risk.case_decided", target_of("case", row.id), {"state": "open"},
                           {"state": row.state, "outcome": body.outcome, "reason": body.reason,
                            "reference": row.reference, "kind": row.kind}, at=now)
        return case_view(row)


@backoffice.get("/players/{player_id}", response_model=PlayerRiskView)
async def player_features(player_id: uuid.UUID, request: Request,
                          _who: StaffContext = Depends(REVIEWERS)) -> PlayerRiskView:
    """A player's features (windowed counts and sums), harm score and the markers that make it.
    A player risk has heard nothing of answers with zeros."""
    now = utcnow()
    cut = window_cutoffs(now)
    async with _rt(request).database.session() as s:
        row = await s.get(PlayerFeatures, player_id)
        buckets = (await s.execute(select(FeatureBucket.feature, FeatureBucket.span, FeatureBucket.start,
                                          FeatureBucket.n, FeatureBucket.total)
                                   .where(FeatureBucket.player_id == player_id))).all()
        methods = await s.scalar(select(func.count()).select_from(DepositMethod)
                                 .where(DepositMethod.player_id == player_id))
        open_cases = await s.scalar(select(func.count()).select_from(Case)
                                    .where(Case.player_id == player_id, Case.state == "open"))
    sums: dict[tuple[str, str], list[int]] = {}
    for feature, span, start, n, total in buckets:
        for w in WINDOWS:
            if (span == MINUTE_SPAN) == (w in SHORT_WINDOWS) and start > cut[w]:
                acc = sums.setdefault((feature, w), [0, 0])
                acc[0] += n
                acc[1] += total
    windows = [WindowView(feature=f, window=w, count=c, total=t)
               for (f, w), (c, t) in sorted(sums.items(), key=lambda x: (x[0][0], WINDOWS.index(x[0][1])))]
    return PlayerRiskView(
        player_id=player_id, harm_score=row.harm_score if row else 0, harm_rules=list(row.harm_rules) if row else [],
        harm_at=row.harm_at if row else None, windows=windows, deposit_methods=int(methods or 0),
        last_deposit_amount=row.last_deposit_amount if row else None,
        last_deposit_at=row.last_deposit_at if row else None,
        wagered_since_deposit=row.wagered_since_deposit if row else 0,
        won_since_deposit=row.won_since_deposit if row else 0,
        last_ip=row.last_ip if row else None, last_device=row.last_device if row else None,
        open_cases=int(open_cases or 0))


def _version_view(row: RuleSetVersion, active: int) -> dict[str, Any]:
    return {"version": row.version, "created_at": row.created_at, "created_by": row.created_by,
            "reason": row.reason, "active": row.version == active}


@backoffice.get("/rule-sets", response_model=list[RuleSetVersionView])
async def list_rule_sets(request: Request, _who: StaffContext = Depends(REVIEWERS),
                         limit: int = Query(100, ge=1, le=1000)) -> list[RuleSetVersionView]:
    """Rule set versions, newest first; the newest is in force."""
    async with _rt(request).database.session() as s:
        rows = (await s.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(limit))).all()
    active = rows[0].version if rows else 0
    return [RuleSetVersionView(**_version_view(r, active)) for r in rows]


@backoffice.get("/rule-sets/{version}", response_model=RuleSetVersionDetail, responses=refusals(RULE_SET_NOT_FOUND))
async def get_rule_set(request: Request, version: int = Path(ge=1, le=2**31 - 1),
                       _who: StaffContext = Depends(REVIEWERS)) -> RuleSetVersionDetail:
    async with _rt(request).database.session() as s:
        row = await s.get(RuleSetVersion, version)
        active = await s.scalar(select(func.max(RuleSetVersion.version)))
    if row is None:
        raise RULE_SET_NOT_FOUND(f"there is no version {version}")
    return RuleSetVersionDetail(**_version_view(row, int(active or 0)), document=row.document)


@backoffice.post("/rule-sets", status_code=201, response_model=RuleSetVersionDetail,
                 responses=refusals(RULE_SET_CONFLICT))
async def publish_rule_set(body: PublishRuleSet, request: Request,
                           who: StaffContext = Depends(REVIEWERS)) -> RuleSetVersionDetail:
    """Publish a new version of the rule set (validated; a bad document is a 422). It is in force
    for the next decision of every replica. Audited with the previous and the new document."""
    now = utcnow()
    document = body.document.model_dump(mode="json")
    async with _rt(request).database.transaction() as s:
        await s.execute(text("SELECT pg_advisory_xact_lock(hashtext('risk.rule_sets'))"))
        current = await s.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
        version = (current.version if current else 0) + 1
        if body.based_on is not None and current is not None and body.based_on != current.version:
            raise RULE_SET_CONFLICT(f"version {current.version} is in force now, not {body.based_on}",
                                    active=current.version)
        row = RuleSetVersion(version=version, document=document, created_at=now, created_by=who.actor,
                             reason=body.reason)
        s.add(row)
        await audit.record(s, Actor.of(who), "risk.rule_set_published", target_of("rule_set", version),
                           {"version": current.version, "document": current.document} if current else None,
                           {"version": version, "document": document, "reason": body.reason}, at=now)
    return RuleSetVersionDetail(**_version_view(row, version), document=document)
