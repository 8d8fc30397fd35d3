"""HTTP routes: /internal/wallet/... for services (service token), /v1/wallet/... for players; the
back-office ones (adjustments, audit) also need a staff token (gameplane.kit.staff)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as c
from gameplane.kit.app import Runtime
from gameplane.kit.audit import Actor, audit_router
from gameplane.kit.auth import PlayerContext, callers, player_context
from gameplane.kit.fastroutes import FastRequest, FastRoute, Reply, json_reply
from gameplane.kit.money import MAX_AMOUNT_MINOR
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff
from gameplane.wallet import bonuses, cashier, fastdeposit, fastplay, grants, play, queries, store
from gameplane.wallet.reconcile import reconcile
from gameplane.wallet.rules import Context, check_currency
from gameplane.wallet.rules import deposit_allowance as deposit_allowance_of
from gameplane.wallet.schemas import (
    Balances,
    HistoryPage,
    Movements,
    ReconciliationReport,
    SweepResult,
    TransactionView,
)
from gameplane.wallet.settings import WalletSettings

log = logging.getLogger("gameplane.wallet")

T = TypeVar("T")

internal = APIRouter(prefix="/internal/wallet", tags=["internal"])
# Who may call each internal route (gameplane.kit.auth.callers): the services whose real call
# sites use it (the catalogue's `calls`), and the back office for staff work and audits.
GAMES = callers("games")
PAYMENTS = callers("payments")
BONUS = callers("bonus")
BACKOFFICE = callers("backoffice")
BALANCE_READERS = callers("games", "payments", "backoffice")
public = APIRouter(prefix="/v1/wallet", tags=["player"])
backoffice = audit_router("/internal/wallet")


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def execute(rt: Runtime, op: Callable[[AsyncSession, Context], Awaitable[T]], attempts: int = 3) -> T:
    """One operation = one DB transaction. A replayed key answers with what was stored."""
    ctx: Context = rt.state["ctx"]
    for attempt in range(attempts):
        try:
            async with rt.database.transaction() as s:
                return await op(s, ctx)
        except store.Replay as replay:
            return replay.result  # type: ignore[return-value]
        except DBAPIError as exc:
            orig = exc.orig
            code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
            if code not in store.RETRYABLE_SQLSTATES or attempt == attempts - 1:
                raise
            log.warning("retrying after %s (attempt %d)", code, attempt + 1)
            await asyncio.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


async def answer(request: Request, op: Callable[[AsyncSession, Context], Awaitable[c.OperationResult]]) -> Response:
    """Serialise the answer once (it is already a validated model; a replay is the stored one)."""
    result = await execute(_runtime(request), op)
    return Response(result.model_dump_json(), media_type="application/json")


async def expire_holds(rt: Runtime, limit: int = 100) -> list[uuid.UUID]:
    """Void every expired hold, each in its own transaction under a deterministic key."""
    async with rt.database.session() as s:
        due = await cashier.expired_holds(s, rt.state["ctx"], limit)
    done = []
    for hold_id in due:
        req = c.WithdrawalVoidRequest(idempotency_key=cashier.expiry_key(hold_id))
        try:
            await execute(rt, lambda s, ctx, h=hold_id, r=req: cashier.withdrawal_void(s, h, r, ctx, expired=True))
            done.append(hold_id)
        except Exception as exc:  # closed meanwhile by a post or void: nothing to expire
            log.info("hold %s not expired: %s", hold_id, exc)
    return done


# ---- money operations --------------------------------------------------------------------

@internal.post("/bets", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.PLAYER_BLOCKED, c.CURRENCY_MISMATCH, c.INSUFFICIENT_FUNDS,
                                    c.ROUND_CLOSED, c.DUPLICATE_TRANSACTION, c.BET_ROLLED_BACK, c.BONUS_MAX_STAKE),
               dependencies=[Depends(GAMES)])
async def place_bet(body: c.BetRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: play.bet(s, body, ctx))


@internal.post("/wins", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.CURRENCY_MISMATCH, c.BET_NOT_FOUND, c.ROUND_CLOSED,
                                    c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(GAMES)])
async def settle_win(body: c.WinRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: play.win(s, body, ctx))


@internal.post("/rollbacks", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.CURRENCY_MISMATCH, c.BET_NOT_FOUND, c.ROUND_SETTLED,
                                    c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(GAMES)])
async def roll_back(body: c.RollbackRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: play.rollback(s, body, ctx))


@internal.post("/deposits", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.PLAYER_BLOCKED, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def credit_deposit(body: c.DepositRequest, request: Request) -> Any:
    """Pays off an outstanding receivable first (`receivable_settled`), the rest reaches cash."""
    return await answer(request, lambda s, ctx: cashier.deposit(s, body, ctx))


@internal.post("/chargebacks", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def charge_back(body: c.ChargebackRequest, request: Request) -> Any:
    """Cash pays up to its balance; the shortfall becomes the player's receivable (`receivable_booked`)."""
    return await answer(request, lambda s, ctx: cashier.chargeback(s, body, ctx))


@internal.post("/fees", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def charge_fee(body: c.FeeRequest, request: Request) -> Any:
    """A payment provider's fee (its settlement report's fee row): payment_fees expense -> psp_clearing,
    attributed to the player of the payment; the player's balances do not move."""
    return await answer(request, lambda s, ctx: cashier.fee(s, body, ctx))


@internal.post("/withdrawals", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.INSUFFICIENT_FUNDS, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def hold_withdrawal(body: c.WithdrawalHoldRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: cashier.withdrawal_hold(s, body, ctx))


@internal.post("/withdrawals/expire", response_model=SweepResult, dependencies=[Depends(PAYMENTS)])
async def sweep_holds(request: Request) -> SweepResult:
    return SweepResult(expired=await expire_holds(_runtime(request)))


@internal.post("/withdrawals/{hold_id}/post", response_model=c.OperationResult,
               responses=refusals(c.HOLD_NOT_FOUND, c.HOLD_CLOSED, c.HOLD_EXCEEDED, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def post_withdrawal(hold_id: uuid.UUID, body: c.WithdrawalPostRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: cashier.withdrawal_post(s, hold_id, body, ctx))


@internal.post("/withdrawals/{hold_id}/void", response_model=c.OperationResult,
               responses=refusals(c.HOLD_NOT_FOUND, c.HOLD_CLOSED, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(PAYMENTS)])
async def void_withdrawal(hold_id: uuid.UUID, body: c.WithdrawalVoidRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: cashier.withdrawal_void(s, hold_id, body, ctx))


@internal.post("/bonuses", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.GRANT_EXISTS, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(BONUS)])
async def grant_bonus(body: c.BonusGrantRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: bonuses.grant(s, body, ctx))


@internal.post("/bonuses/{grant_id}/convert", response_model=c.OperationResult,
               responses=refusals(c.GRANT_NOT_FOUND, c.GRANT_CLOSED, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(BONUS)])
async def convert_bonus(grant_id: str, body: c.BonusSettleRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: bonuses.settle(s, grant_id, body, ctx, convert=True))


@internal.post("/bonuses/{grant_id}/forfeit", response_model=c.OperationResult,
               responses=refusals(c.GRANT_NOT_FOUND, c.GRANT_CLOSED, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(BONUS)])
async def forfeit_bonus(grant_id: str, body: c.BonusSettleRequest, request: Request) -> Any:
    return await answer(request, lambda s, ctx: bonuses.settle(s, grant_id, body, ctx, convert=False))


@internal.post("/bonuses/{grant_id}/free-spin-wins", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.GRANT_NOT_FOUND, c.GRANT_CLOSED, c.CURRENCY_MISMATCH,
                                    c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(GAMES)])
async def free_spin_win(grant_id: str, body: c.FreeSpinWinRequest, request: Request) -> Any:
    """A provider's free-spin win (no stake): the bonus liability pays it into the grant."""
    return await answer(request, lambda s, ctx: bonuses.free_spin_win(s, grant_id, body, ctx))


@internal.get("/players/{player_id}/grants/{currency}", response_model=list[c.GrantBalance],
              responses=refusals(c.UNSUPPORTED_CURRENCY), dependencies=[Depends(BONUS)])
async def open_grants(player_id: uuid.UUID, currency: str, request: Request) -> list[c.GrantBalance]:
    """The player's open grants in the currency with their balances, oldest first."""
    check_currency(currency)
    async with _runtime(request).database.session() as s:
        return await grants.listing(s, player_id, currency)


@internal.post("/adjustments", response_model=c.OperationResult,
               responses=refusals(c.UNSUPPORTED_CURRENCY, c.INSUFFICIENT_FUNDS, c.DUPLICATE_TRANSACTION),
               dependencies=[Depends(BACKOFFICE)])
async def adjust(body: c.AdjustmentRequest, request: Request,
                 who: StaffContext = Depends(staff("finance", "admin"))) -> Any:
    """A back-office action: staff roles finance or admin; audited (GET /internal/wallet/audit)."""
    return await answer(request, lambda s, ctx: cashier.adjust(s, body, ctx, Actor.of(who)))


# The hottest routes, also answered ahead of FastAPI (gameplane.kit.fastroutes): bets and wins first
# by the one round-trip SQL path (gameplane.wallet.fastplay) when enabled, else or when it declines
# by the same domain functions as above; deposits likewise (gameplane.wallet.fastdeposit, else
# cashier.deposit). The FastAPI routes stay their OpenAPI description and reference.

def fast_routes(rt: Runtime, *, sql_fast_path: bool) -> list[FastRoute]:
    ctx: Context = rt.state["ctx"]
    settings: WalletSettings = rt.settings  # type: ignore[assignment]
    batcher = fastplay.Batcher(lambda: rt.database.pool, slots=settings.fast_batch_slots,
                               max_batch=settings.fast_batch_max, house_shards=settings.house_shards)

    def route(path: str, model: type[Any], sql: Callable[..., Awaitable[bytes | None]],
              python: Callable[[AsyncSession, Any, Context], Awaitable[c.OperationResult]]) -> FastRoute:
        async def handle(request: FastRequest) -> Reply:
            body = request.data
            if sql_fast_path and (answer := await sql(batcher, body, ctx)) is not None:
                return json_reply(answer)
            result = await execute(rt, lambda s, ctx: python(s, body, ctx))
            return json_reply(result.model_dump_json().encode())

        return FastRoute("POST", path, handle, model=model, callers=GAMES.allowed)

    async def deposit(request: FastRequest) -> Reply:
        body = request.data
        result = await fastdeposit.deposit_or_none(rt.database.pool, body, ctx) if sql_fast_path else None
        if result is None:
            result = await execute(rt, lambda s, ctx: cashier.deposit(s, body, ctx))
        return json_reply(result.model_dump_json().encode())

    # deposits too: a PSP webhook storm is answered by credits, and FastAPI's share of one is large
    return [route("/internal/wallet/bets", c.BetRequest, fastplay.bet, play.bet),
            route("/internal/wallet/wins", c.WinRequest, fastplay.win, play.win),
            FastRoute("POST", "/internal/wallet/deposits", deposit, model=c.DepositRequest,
                      callers=PAYMENTS.allowed)]


# ---- reads -------------------------------------------------------------------------------

@internal.get("/players/{player_id}/balances/{currency}", response_model=c.Balance,
              responses=refusals(c.UNSUPPORTED_CURRENCY), dependencies=[Depends(BALANCE_READERS)])
async def balance(player_id: uuid.UUID, currency: str, request: Request) -> c.Balance:
    check_currency(currency)
    async with _runtime(request).database.session() as s:
        return await store.balances(s, player_id, currency)


@internal.get("/players/{player_id}/deposit-allowance/{currency}", response_model=c.DepositAllowance,
              responses=refusals(c.UNSUPPORTED_CURRENCY), dependencies=[Depends(PAYMENTS)])
async def deposit_allowance(player_id: uuid.UUID, currency: str, request: Request,
                            amount: int | None = Query(None, gt=0, le=MAX_AMOUNT_MINOR,
                                                       description="the deposit intended, if known")
                            ) -> c.DepositAllowance:
    """Asked before a payment session: self-exclusion, time-out and deposit limits, as a deposit
    would meet them now."""
    check_currency(currency)
    rt = _runtime(request)
    async with rt.database.session() as s:
        return await deposit_allowance_of(s, player_id, currency, amount, rt.state["ctx"].now())


@internal.get("/players/{player_id}/balances", response_model=Balances, dependencies=[Depends(BACKOFFICE)])
async def balances(player_id: uuid.UUID, request: Request) -> Balances:
    async with _runtime(request).database.session() as s:
        return Balances(player_id=player_id, balances=await queries.all_balances(s, player_id))


@internal.get("/players/{player_id}/transactions", response_model=HistoryPage,
              responses=refusals(c.INVALID_CURSOR),
               dependencies=[Depends(BACKOFFICE)])
async def player_history(player_id: uuid.UUID, request: Request, cursor: str | None = Query(None, max_length=100),
                         currency: str | None = Query(None, max_length=3),
                         limit: int = Query(50, ge=1, le=500)) -> HistoryPage:
    async with _runtime(request).database.session() as s:
        return await queries.history(s, player_id, cursor=cursor, limit=limit, currency=currency)


@internal.get("/transactions/{tx_id}", response_model=TransactionView,
              responses=refusals(c.TRANSACTION_NOT_FOUND),
               dependencies=[Depends(BACKOFFICE)])
async def get_transaction(tx_id: uuid.UUID, request: Request) -> TransactionView:
    async with _runtime(request).database.session() as s:
        return await queries.transaction(s, tx_id)


@internal.get("/reconciliation", response_model=ReconciliationReport, dependencies=[Depends(BACKOFFICE)])
async def reconciliation(request: Request) -> ReconciliationReport:
    async with _runtime(request).database.session() as s:
        return await reconcile(s)


@internal.get("/movements", response_model=Movements, dependencies=[Depends(PAYMENTS)])
async def movements(request: Request, prefix: str = Query(min_length=3, max_length=100, pattern=r"^[\x21-\x7E]+$"),
                    since: datetime = Query(), until: datetime = Query(),
                    limit: int = Query(100_000, ge=1, le=100_000)) -> Movements:
    """Transactions whose idempotency key starts with `prefix`, created in [since, until): what a
    caller posted under its own keys, for its reconciliation (payments: `payments:`)."""
    async with _runtime(request).database.session() as s:
        return Movements(items=await queries.movements(s, prefix, since, until, limit))


@public.get("/balances", response_model=Balances)
async def my_balances(request: Request, who: PlayerContext = Depends(player_context)) -> Balances:
    async with _runtime(request).database.session() as s:
        return Balances(player_id=who.player_id, balances=await queries.all_balances(s, who.player_id))


@public.get("/transactions", response_model=HistoryPage,
            responses=refusals(c.INVALID_CURSOR))
async def my_history(request: Request, cursor: str | None = Query(None, max_length=100),
                     currency: str | None = Query(None, max_length=3),
                     limit: int = Query(50, ge=1, le=200),
                     who: PlayerContext = Depends(player_context)) -> HistoryPage:
    async with _runtime(request).database.session() as s:
        return await queries.history(s, who.player_id, cursor=cursor, limit=limit, currency=currency,
                                     as_player=True)


@public.get("/transactions/{tx_id}", response_model=TransactionView,
            responses=refusals(c.TRANSACTION_NOT_FOUND))
async def my_transaction(tx_id: uuid.UUID, request: Request,
                         who: PlayerContext = Depends(player_context)) -> TransactionView:
    async with _runtime(request).database.session() as s:
        return await queries.transaction(s, tx_id, player_id=who.player_id)
