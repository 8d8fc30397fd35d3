"""HTTP routes: /v1/payments/... for players (through the gateway), /webhooks/payments/{psp} for
PSPs (signed by the PSP, no player token), /internal/payments/... for the back office."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime
from sqlalchemy import and_, select

from gameplane.contracts import payments as c
from gameplane.contracts.players import DEVICE_HEADER
from gameplane.kit import audit
from gameplane.kit.app import Runtime
from gameplane.kit.audit import Actor, audit_router, target_of
from gameplane.kit.auth import CLIENT_IP_HEADER, PlayerContext, callers, player_context
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, json_reply
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff
from gameplane.payments import flows, reconcile, store
from gameplane.payments.models import mismatches, payments, webhook_rejections

public = APIRouter(prefix="/v1/payments", tags=["player"])
webhooks = APIRouter(tags=["psp"])
internal = APIRouter(prefix="/internal/payments", tags=["back office"], dependencies=[Depends(callers("backoffice"))])
backoffice_audit = audit_router("/internal/payments")


# settlement days a PSP can have (and whose neighbours a datetime can hold)
Day = Annotated[date, Query(ge=date(2000, 1, 1), le=date(2999, 12, 31))]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _client(request: Request) -> dict[str, str | None]:
    """The player's address as the gateway judged it (its trusted proxy hops; a client's own
    X-Client-Ip never passes the gateway) and the device id the client sent, for risk."""
    return {"ip": request.headers.get(CLIENT_IP_HEADER), "device_id": request.headers.get(DEVICE_HEADER)}


@public.post("/deposits", status_code=201, response_model=c.PaymentView,
             responses=refusals(c.UNKNOWN_PSP, c.DEPOSIT_NOT_ALLOWED, c.UNDERAGE, c.KYC_REQUIRED, c.RISK_DENIED,
                                c.RISK_UNAVAILABLE, c.PSP_UNAVAILABLE, c.PLAYER_NOT_FOUND, c.CURRENCY_MISMATCH))
async def create_deposit(body: c.DepositCreate, request: Request,
                         who: PlayerContext = Depends(player_context)) -> c.PaymentView:
    """Open a payment session at the PSP; the player completes it at `redirect_url`."""
    return await flows.create_deposit(_rt(request), who.player_id, body, **_client(request))


@public.post("/withdrawals", status_code=201, response_model=c.PaymentView,
             responses=refusals(c.UNKNOWN_METHOD, c.KYC_REQUIRED, c.INSUFFICIENT_FUNDS, c.PLAYER_NOT_FOUND,
                                c.CURRENCY_MISMATCH))
async def create_withdrawal(body: c.WithdrawalCreate, request: Request,
                            who: PlayerContext = Depends(player_context)) -> c.PaymentView:
    """Withdraw to a method the player deposited with. The answer's `state` and `held_reason` say
    whether it goes out (approved/processing), waits (held, review) or was refused (rejected)."""
    return await flows.create_withdrawal(_rt(request), who.player_id, body, **_client(request))


@public.post("/withdrawals/{payment_id}/cancel", response_model=c.PaymentView,
             responses=refusals(c.PAYMENT_NOT_FOUND, c.NOT_CANCELLABLE))
async def cancel_withdrawal(payment_id: uuid.UUID, request: Request,
                            who: PlayerContext = Depends(player_context)) -> c.PaymentView:
    return await flows.cancel(_rt(request), who.player_id, payment_id)


@public.get("", response_model=c.PaymentPage)
async def my_payments(request: Request, who: PlayerContext = Depends(player_context),
                      kind: Literal["deposit", "withdrawal"] | None = None,
                      before: AwareDatetime | None = Query(None, description="next page: `next_cursor` of the last"),
                      limit: int = Query(50, ge=1, le=200)) -> c.PaymentPage:
    q = (select(payments).where(payments.c.player_id == who.player_id)
         .order_by(payments.c.created_at.desc()).limit(limit + 1))
    if kind is not None:
        q = q.where(payments.c.kind == kind)
    if before is not None:
        q = q.where(payments.c.created_at < before)
    async with _rt(request).database.session() as s:
        rows = (await s.execute(q)).mappings().all()
    items = [store.view(r) for r in rows[:limit]]
    return c.PaymentPage(items=items, next_cursor=items[-1].created_at.isoformat() if len(rows) > limit else None)


@webhooks.post(c.PATH_WEBHOOK, response_model=c.WebhookAck,
               responses=refusals(c.UNKNOWN_PSP, c.WEBHOOK_BAD_SIGNATURE, c.WEBHOOK_STALE, c.WEBHOOK_MALFORMED,
                                  c.WEBHOOK_UNKNOWN_REFERENCE, c.WEBHOOK_MISMATCH))
async def psp_webhook(psp: str, request: Request) -> c.WebhookAck:
    """A PSP's notification, authenticated by its signature (each adapter's scheme). 200 once it is
    stored (a repeat answers `duplicate`); any refusal is a 4xx, recorded in webhook-rejections."""
    body = await request.body()
    return await flows.handle_webhook(_rt(request), psp, dict(request.headers), body)


def fast_routes(rt: Runtime) -> list[FastRoute]:
    """The webhook route also answered ahead of FastAPI (gameplane.kit.fastroutes: same auth-free
    route, same problems), a storm of them being payments' hottest load; the FastAPI route above
    stays its OpenAPI description and reference."""

    async def webhook(request: FastRequest) -> Reply:
        ack = await flows.handle_webhook(rt, request.params["psp"], request.headers, request.body)
        return json_reply(ack.model_dump_json().encode())

    return [FastRoute("POST", c.PATH_WEBHOOK, webhook)]


# ---- back office -------------------------------------------------------------------------------

@internal.get("/withdrawals", response_model=list[c.PaymentView])
async def waiting_withdrawals(request: Request,
                              _who: StaffContext = Depends(staff("support", "risk", "finance", "admin")),
                              state: Literal["held", "review", "processing", "failed"] = "held",
                              limit: int = Query(100, ge=1, le=500)) -> list[c.PaymentView]:
    async with _rt(request).database.session() as s:
        rows = (await s.execute(select(payments).where(and_(payments.c.kind == "withdrawal", payments.c.state == state))
                                .order_by(payments.c.created_at).limit(limit))).mappings().all()
    return [store.view(r) for r in rows]


async def _decide(request: Request, payment_id: uuid.UUID, approve: bool, body: c.StaffDecision,
                  who: StaffContext) -> c.PaymentView:
    rt = _rt(request)
    before, after = await flows.decide(rt, payment_id, approve, body.reason)
    async with rt.database.transaction() as s:
        await audit.record(s, Actor.of(who), "payments.withdrawal." + ("approve" if approve else "reject"),
                           target_of("payment", payment_id), {"state": before["state"]},
                           {"state": after["state"], "reason": body.reason}, at=flows.now_of(rt))
    await flows.after_decision(rt, payment_id)
    async with rt.database.session() as s:
        cur = await store.get(s, payment_id)
    assert cur is not None
    return store.view(cur)


@internal.post("/withdrawals/{payment_id}/approve", response_model=c.PaymentView,
               responses=refusals(c.PAYMENT_NOT_FOUND, c.NOT_DECIDABLE, c.DECIDED_BY_RISK_CASE))
async def approve(payment_id: uuid.UUID, body: c.StaffDecision, request: Request,
                  who: StaffContext = Depends(staff("risk", "admin"))) -> c.PaymentView:
    return await _decide(request, payment_id, True, body, who)


@internal.post("/withdrawals/{payment_id}/reject", response_model=c.PaymentView,
               responses=refusals(c.PAYMENT_NOT_FOUND, c.NOT_DECIDABLE, c.DECIDED_BY_RISK_CASE))
async def reject(payment_id: uuid.UUID, body: c.StaffDecision, request: Request,
                 who: StaffContext = Depends(staff("risk", "admin"))) -> c.PaymentView:
    return await _decide(request, payment_id, False, body, who)


@internal.post("/reconciliation", response_model=c.ReconciliationRun, responses=refusals(c.UNKNOWN_PSP))
async def run_reconciliation(request: Request, day: Day, who: StaffContext = Depends(staff("finance", "admin")),
                             psp: str | None = Query(None, max_length=40)) -> c.ReconciliationRun:
    rt = _rt(request)
    run = await reconcile.reconcile_day(rt, day, [psp] if psp else None)
    async with rt.database.transaction() as s:
        await audit.record(s, Actor.of(who), "payments.reconciliation", f"day:{day}", None,
                           {"mismatches": len(run.mismatches), "report_rows": run.report_rows}, at=flows.now_of(rt))
    return run


@internal.get("/reconciliation/mismatches", response_model=list[c.MismatchView])
async def list_mismatches(request: Request, _who: StaffContext = Depends(staff("finance", "risk", "admin")),
                          day: Day | None = None, limit: int = Query(200, ge=1, le=1000)) -> list[c.MismatchView]:
    q = select(mismatches).order_by(mismatches.c.id.desc()).limit(limit)
    if day is not None:
        q = q.where(mismatches.c.day == day)
    async with _rt(request).database.session() as s:
        rows = (await s.execute(q)).mappings().all()
    return [reconcile.view(dict(r)) for r in rows]


@internal.get("/webhook-rejections", response_model=list[c.WebhookRejectionView])
async def list_rejections(request: Request, _who: StaffContext = Depends(staff("support", "risk", "finance", "admin")),
                          psp: str | None = Query(None, max_length=40, pattern=r"^[^\x00]+$"),
                          limit: int = Query(100, ge=1, le=1000)) -> list[Any]:
    q = select(webhook_rejections).order_by(webhook_rejections.c.id.desc()).limit(limit)
    if psp is not None:
        q = q.where(webhook_rejections.c.psp == psp)
    async with _rt(request).database.session() as s:
        rows = (await s.execute(q)).mappings().all()
    return [c.WebhookRejectionView.model_validate(dict(r)) for r in rows]
