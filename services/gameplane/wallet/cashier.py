"""Money in and out: deposits (settling a receivable first), chargebacks, withdrawal holds (hold →
post | void, with expiry), manual adjustments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import (
    Adjusted,
    AdjustmentRequest,
    ChargebackRequest,
    ChargedBack,
    DepositCredited,
    DepositRequest,
    FeeCharged,
    FeeRequest,
    OperationResult,
    WithdrawalHeld,
    WithdrawalHoldRequest,
    WithdrawalPosted,
    WithdrawalPostRequest,
    WithdrawalVoided,
    WithdrawalVoidRequest,
)
from gameplane.kit import audit
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.outbox import publish
from gameplane.kit.problems import Problem
from gameplane.wallet import ledger, store
from gameplane.wallet.rules import PRODUCER, Context, check_currency, guard_deposit

# After the cash row is locked (the player's lock for the receivable, see store.lock_cash_and_debt):
# the receivable under lock, the balances a deposit does not move, and whether it is the first.
# Asked while holding the cash row, so two first deposits cannot both be "first".
DEPOSIT_STATE = text(
    "WITH r AS (SELECT balance FROM accounts WHERE owner = :o AND kind = 'receivable' AND currency = :c "
    "AND shard = 0 FOR UPDATE) "
    "SELECT (SELECT balance FROM r) AS receivable, "
    "(SELECT balance FROM accounts WHERE owner = :o AND kind = 'bonus' AND currency = :c AND shard = 0) AS bonus, "
    "(SELECT balance FROM accounts WHERE owner = :o AND kind = 'withdrawal_hold' AND currency = :c AND shard = 0) "
    "AS hold, NOT EXISTS (SELECT 1 FROM transactions WHERE player_id = :p AND kind = 'deposit') AS first")


async def deposit(s: AsyncSession, req: DepositRequest, ctx: Context) -> OperationResult:
    """Every deposit credits from the one psp_clearing row: it is locked only by the last statement
    (balances, transaction, entries, stored answer and outbox row at once, store.commit) and the
    COMMIT, so deposits queue on it for as short a time as possible. The event goes out with the
    relay's next poll (no NOTIFY: store.commit says why). gameplane.wallet.fastdeposit runs the same
    statements on bare asyncpg for the common case."""
    check_currency(req.currency)
    now = ctx.now()
    state = await store.claim(s, req.idempotency_key, "deposit", store.request_hash("deposit", req),
                              req.player_id, now)
    if not req.received:  # money the provider already took is credited whatever protection says now
        await guard_deposit(s, state, req.player_id, req.currency, req.amount, now)
    owner = str(req.player_id)
    cash = (await s.execute(store.LOCK_CASH, {"o": owner, "c": req.currency})).scalar_one()
    row = (await s.execute(DEPOSIT_STATE, {"o": owner, "c": req.currency, "p": req.player_id})).one()
    credit = credit_of(req, now, cash, row.receivable, row.bonus, row.hold, row.first)
    await store.commit(s, credit.result, credit.postings, credit.event, details=credit.details)
    return credit.result


@dataclass(frozen=True)
class Credit:
    result: OperationResult
    postings: list[ledger.Posting]
    event: DepositCredited
    details: dict[str, object]


def credit_of(req: DepositRequest, now: datetime, cash: int, receivable: int | None, bonus: int | None,
              hold: int | None, first: bool) -> Credit:
    """A deposit's answer, postings, event and details from the player's balances read under the
    cash lock (`receivable`: the stored, non-positive balance, None when there is no such account)."""
    settled = ledger.settlement(req.amount, -(receivable or 0))
    balance = store.to_balance(req.currency, {
        "cash": cash + req.amount - settled, "bonus": bonus or 0, "withdrawal_hold": hold or 0,
        **({} if receivable is None else {ledger.RECEIVABLE: receivable + settled})})
    result = OperationResult(transaction_id=uuid.uuid4(), kind="deposit", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             balance=balance, created_at=now, receivable_settled=settled)
    event = DepositCredited(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                            amount=req.amount, cash=req.amount - settled, bonus=0, occurred_at=now, psp=req.psp,
                            first_deposit=bool(first), receivable_settled=settled)
    return Credit(result, ledger.deposit(req.player_id, req.currency, req.amount, settle=settled), event,
                  {"psp": req.psp, "psp_reference": req.psp_reference, "first_deposit": bool(first),
                   "receivable_settled": settled, "received": req.received})


async def chargeback(s: AsyncSession, req: ChargebackRequest, ctx: Context) -> OperationResult:
    """Never refused for lack of funds and never blocked by player protection: the provider has
    already taken the money back. Cash pays up to its balance; the rest is booked as owed."""
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "chargeback", store.request_hash("chargeback", req))
    cash, _ = await store.lock_cash_and_debt(s, req.player_id, req.currency)
    split = ledger.chargeback_split(req.amount, cash)
    postings = ledger.chargeback(req.player_id, req.currency, split.from_cash, split.owed)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="chargeback", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             balance=applied.balance, created_at=now, receivable_booked=split.owed)
    await store.record(s, result, applied.ids, postings,
                       details={"psp": req.psp, "psp_reference": req.psp_reference, "from_cash": split.from_cash,
                                "receivable_booked": split.owed})
    await publish(s, ChargedBack(transaction_id=result.transaction_id, player_id=req.player_id,
                                 currency=req.currency, amount=req.amount, cash=split.from_cash, bonus=0,
                                 occurred_at=now, psp=req.psp, psp_reference=req.psp_reference,
                                 receivable=split.owed, outstanding=applied.balance.receivable or 0),
                  producer=PRODUCER)
    return result


async def fee(s: AsyncSession, req: FeeRequest, ctx: Context) -> OperationResult:
    """A payment provider's fee, attributed to the player whose payment it was charged for: their
    balances do not move (the answer shows them as they are), only the platform's payment_fees and
    psp_clearing do. Never refused for lack of funds: the provider has already kept the money."""
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "fee", store.request_hash("fee", req))
    postings = ledger.payment_fee(req.currency, req.amount)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="fee", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             balance=applied.balance, created_at=now)
    await store.record(s, result, applied.ids, postings,
                       details={"psp": req.psp, "psp_reference": req.psp_reference,
                                "payment_reference": req.payment_reference})
    await publish(s, FeeCharged(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                                amount=req.amount, cash=0, bonus=0, occurred_at=now, psp=req.psp,
                                psp_reference=req.psp_reference, payment_reference=req.payment_reference),
                  producer=PRODUCER)
    return result


_NEW_HOLD = text("INSERT INTO holds (id, player_id, currency, amount, remaining, state, expires_at) "
                 "VALUES (:id, :p, :c, :a, :a, 'open', :exp)")
_LOCK_HOLD = text("SELECT player_id, currency, amount, remaining, state, expires_at FROM holds "
                  "WHERE id = :id FOR UPDATE")
_SET_HOLD = text("UPDATE holds SET remaining = :remaining, state = :state WHERE id = :id")


async def withdrawal_hold(s: AsyncSession, req: WithdrawalHoldRequest, ctx: Context) -> OperationResult:
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "withdrawal_hold", store.request_hash("withdrawal_hold", req))
    postings = ledger.withdrawal_hold(req.player_id, req.currency, req.amount)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    hold_id = uuid.uuid4()
    expires = now + timedelta(seconds=req.expires_in_seconds or ctx.hold_ttl_seconds)
    await s.execute(_NEW_HOLD, {"id": hold_id, "p": req.player_id, "c": req.currency, "a": req.amount,
                                "exp": expires})
    result = OperationResult(transaction_id=uuid.uuid4(), kind="withdrawal_hold", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             balance=applied.balance, created_at=now, hold_id=hold_id, remaining=req.amount)
    await store.record(s, result, applied.ids, postings,
                       details={"hold_id": str(hold_id), "expires_at": expires.isoformat()})
    await publish(s, WithdrawalHeld(transaction_id=result.transaction_id, player_id=req.player_id,
                                    currency=req.currency, amount=req.amount, cash=req.amount, bonus=0,
                                    occurred_at=now, hold_id=hold_id), producer=PRODUCER)
    return result


async def _open_hold(s: AsyncSession, hold_id: uuid.UUID, ctx: Context, *, for_expiry: bool = False):  # type: ignore[no-untyped-def]
    hold = (await s.execute(_LOCK_HOLD, {"id": hold_id})).one_or_none()
    if hold is None:
        raise wallet_api.HOLD_NOT_FOUND(f"no hold {hold_id}", hold_id=str(hold_id))
    if hold.state != "open":
        raise wallet_api.HOLD_CLOSED(f"hold {hold_id} is {hold.state}",
                      hold_id=str(hold_id), state=hold.state)
    if not for_expiry and hold.expires_at <= ctx.now():
        raise wallet_api.HOLD_CLOSED(f"hold {hold_id} expired at {hold.expires_at}",
                      hold_id=str(hold_id), state="expired")
    return hold


async def withdrawal_post(s: AsyncSession, hold_id: uuid.UUID, req: WithdrawalPostRequest,
                          ctx: Context) -> OperationResult:
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "withdrawal_post",
                      store.request_hash("withdrawal_post", req, hold_id=hold_id))
    hold = await _open_hold(s, hold_id, ctx)
    amount = req.amount if req.amount is not None else hold.remaining
    if amount > hold.remaining:
        raise wallet_api.HOLD_EXCEEDED(f"{amount} requested, {hold.remaining} still held", remaining=hold.remaining)
    remaining = hold.remaining - amount
    postings = ledger.withdrawal_post(hold.player_id, hold.currency, amount)
    applied = await store.apply(s, postings, hold.player_id, hold.currency)
    await s.execute(_SET_HOLD, {"id": hold_id, "remaining": remaining, "state": "open" if remaining else "posted"})
    result = OperationResult(transaction_id=uuid.uuid4(), kind="withdrawal_post", idempotency_key=req.idempotency_key,
                             player_id=hold.player_id, currency=hold.currency, amount=amount,
                             balance=applied.balance, created_at=now, hold_id=hold_id, remaining=remaining)
    await store.record(s, result, applied.ids, postings, details={"hold_id": str(hold_id)})
    await publish(s, WithdrawalPosted(transaction_id=result.transaction_id, player_id=hold.player_id,
                                      currency=hold.currency, amount=amount, cash=amount, bonus=0, occurred_at=now,
                                      hold_id=hold_id, remaining=remaining), producer=PRODUCER)
    return result


async def withdrawal_void(s: AsyncSession, hold_id: uuid.UUID, req: WithdrawalVoidRequest, ctx: Context, *,
                          expired: bool = False) -> OperationResult:
    """Give back what is still held. `expired` is the sweep's call (it may void past the expiry)."""
    now = ctx.now()
    kind = "withdrawal_void"
    await store.claim(s, req.idempotency_key, kind, store.request_hash(kind, req, hold_id=hold_id))
    hold = await _open_hold(s, hold_id, ctx, for_expiry=expired)
    postings = ledger.withdrawal_void(hold.player_id, hold.currency, hold.remaining)
    applied = await store.apply(s, postings, hold.player_id, hold.currency)
    await s.execute(_SET_HOLD, {"id": hold_id, "remaining": 0, "state": "expired" if expired else "voided"})
    result = OperationResult(transaction_id=uuid.uuid4(), kind=kind, idempotency_key=req.idempotency_key,
                             player_id=hold.player_id, currency=hold.currency, amount=hold.remaining,
                             balance=applied.balance, created_at=now, hold_id=hold_id, remaining=0)
    await store.record(s, result, applied.ids, postings,
                       details={"hold_id": str(hold_id), "reason": "expired" if expired else "requested"})
    await publish(s, WithdrawalVoided(transaction_id=result.transaction_id, player_id=hold.player_id,
                                      currency=hold.currency, amount=hold.remaining, cash=hold.remaining, bonus=0,
                                      occurred_at=now, hold_id=hold_id,
                                      reason="expired" if expired else "requested"), producer=PRODUCER)
    return result


_EXPIRED = text("SELECT id FROM holds WHERE state = 'open' AND expires_at <= :now ORDER BY expires_at LIMIT :n")


async def expired_holds(s: AsyncSession, ctx: Context, limit: int = 100) -> list[uuid.UUID]:
    return list((await s.execute(_EXPIRED, {"now": ctx.now(), "n": limit})).scalars())


def expiry_key(hold_id: uuid.UUID) -> str:
    """Deterministic, so two sweepers (replicas) expiring the same hold collapse into one void."""
    return f"wallet:hold-expiry:{hold_id}"


async def adjust(s: AsyncSession, req: AdjustmentRequest, ctx: Context, by: Actor) -> OperationResult:
    """A staff member's manual correction of a player's cash, audited with the balances before and
    after in the same transaction. A replayed key answers from the idempotency record, unaudited."""
    check_currency(req.currency)
    if req.amount == 0:
        raise Problem(422, "validation-error", "An adjustment must move money", "amount is 0")
    now = ctx.now()
    actor = f"staff:{by.name}"
    await store.claim(s, req.idempotency_key, "adjustment", store.request_hash("adjustment", req))
    postings = ledger.adjustment(req.player_id, req.currency, req.amount)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="adjustment", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             balance=applied.balance, created_at=now)
    await store.record(s, result, applied.ids, postings, details={"reason": req.reason, "actor": actor})
    await publish(s, Adjusted(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                              amount=req.amount, cash=req.amount, bonus=0, occurred_at=now, reason=req.reason,
                              actor=actor), producer=PRODUCER)
    # The postings move the player's cash and nothing else of theirs, so the balances before are
    # the ones after less the amount on cash (read under the same row locks).
    after = applied.balance
    before = after.model_copy(update={"cash": after.cash - req.amount})
    await audit.record(s, by, "wallet.adjustment", target_of("player", req.player_id),
                       {"balance": before},
                       {"balance": after, "amount": req.amount, "reason": req.reason,
                        "transaction_id": result.transaction_id, "idempotency_key": req.idempotency_key}, at=now)
    return result
