"""Bonus money: grant (liability → player bonus), convert (bonus → cash, liability → cost), forfeit."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import (
    BonusConverted,
    BonusForfeited,
    BonusGranted,
    BonusGrantRequest,
    BonusSettleRequest,
    OperationResult,
    Split,
)
from gameplane.kit.outbox import publish
from gameplane.wallet import ledger, store
from gameplane.wallet.rules import PRODUCER, Context, check_currency

_NEW_GRANT = text("INSERT INTO bonus_grants (grant_id, player_id, currency, amount, state) "
                  "VALUES (:g, :p, :c, :a, 'active') ON CONFLICT DO NOTHING RETURNING grant_id")
_LOCK_GRANT = text("SELECT player_id, currency, amount, state FROM bonus_grants WHERE grant_id = :g FOR UPDATE")
_SET_GRANT = text("UPDATE bonus_grants SET state = :state WHERE grant_id = :g")


async def grant(s: AsyncSession, req: BonusGrantRequest, ctx: Context) -> OperationResult:
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "bonus_grant", store.request_hash("bonus_grant", req))
    if (await s.execute(_NEW_GRANT, {"g": req.grant_id, "p": req.player_id, "c": req.currency,
                                     "a": req.amount})).first() is None:
        raise wallet_api.GRANT_EXISTS(f"grant {req.grant_id} exists",
                      grant_id=req.grant_id)
    postings = ledger.bonus_grant(req.player_id, req.currency, req.amount)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="bonus_grant", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             split=Split(cash=0, bonus=req.amount), balance=applied.balance, created_at=now,
                             grant_id=req.grant_id)
    await store.record(s, result, applied.ids, postings, details={"grant_id": req.grant_id})
    await publish(s, BonusGranted(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                                  amount=req.amount, cash=0, bonus=req.amount, occurred_at=now,
                                  grant_id=req.grant_id), producer=PRODUCER)
    return result


async def settle(s: AsyncSession, grant_id: str, req: BonusSettleRequest, ctx: Context, *,
                 convert: bool) -> OperationResult:
    """Convert or forfeit what is left of the bonus (bets may have spent part of it)."""
    kind = "bonus_convert" if convert else "bonus_forfeit"
    now = ctx.now()
    await store.claim(s, req.idempotency_key, kind, store.request_hash(kind, req, grant_id=grant_id))
    g = (await s.execute(_LOCK_GRANT, {"g": grant_id})).one_or_none()
    if g is None:
        raise wallet_api.GRANT_NOT_FOUND(f"no grant {grant_id}", grant_id=grant_id)
    if g.state != "active":
        raise wallet_api.GRANT_CLOSED(f"grant {grant_id} is {g.state}",
                      grant_id=grant_id, state=g.state)
    held = await store.balances(s, g.player_id, g.currency, lock=("bonus", "cash"))
    amount = min(req.amount if req.amount is not None else held.bonus, held.bonus)
    build = ledger.bonus_convert if convert else ledger.bonus_forfeit
    postings = build(g.player_id, g.currency, amount)
    applied = await store.apply(s, postings, g.player_id, g.currency)
    await s.execute(_SET_GRANT, {"g": grant_id, "state": "converted" if convert else "forfeited"})
    result = OperationResult(transaction_id=uuid.uuid4(), kind=kind, idempotency_key=req.idempotency_key,
                             player_id=g.player_id, currency=g.currency, amount=amount,
                             split=Split(cash=amount if convert else 0, bonus=-amount), balance=applied.balance,
                             created_at=now, grant_id=grant_id, noop=amount == 0)
    await store.record(s, result, applied.ids, postings, details={"grant_id": grant_id})
    event = BonusConverted if convert else BonusForfeited
    await publish(s, event(transaction_id=result.transaction_id, player_id=g.player_id, currency=g.currency,
                           amount=amount, cash=amount if convert else 0, bonus=-amount, occurred_at=now,
                           grant_id=grant_id), producer=PRODUCER)
    return result
