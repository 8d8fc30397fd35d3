"""Bonus money, one grant at a time: grant (liability → the player's bonus account, on that grant's
sub-ledger), convert (that grant's balance up to a cap → cash, the rest back to the liability),
forfeit (that grant's balance → the liability), and free-spin wins (liability → that grant).

Lock order, as everywhere (gameplane.wallet.grants): idempotency key → player accounts → grant row."""

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
    FreeSpinWinRequest,
    FreeSpinWon,
    OperationResult,
)
from gameplane.kit.outbox import publish
from gameplane.kit.problems import Problem
from gameplane.wallet import grants, ledger, store
from gameplane.wallet.rules import PRODUCER, Context, check_currency

_NEW_GRANT = text("INSERT INTO bonus_grants (grant_id, player_id, currency, amount, state, balance, max_stake, "
                  "priority, created_at) VALUES (:g, :p, :c, :a, 'active', :a, :ms, :pr, :now) "
                  "ON CONFLICT DO NOTHING RETURNING grant_id")
_FIND_GRANT = text("SELECT player_id, currency FROM bonus_grants WHERE grant_id = :g")
_LOCK_GRANT = text("SELECT player_id, currency, amount, state, balance FROM bonus_grants WHERE grant_id = :g "
                   "FOR UPDATE")
_CLOSE_GRANT = text("UPDATE bonus_grants SET state = :state, closed_at = :now, balance = 0 WHERE grant_id = :g")


async def grant(s: AsyncSession, req: BonusGrantRequest, ctx: Context) -> OperationResult:
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "bonus_grant", store.request_hash("bonus_grant", req))
    await store.balances(s, req.player_id, req.currency, lock=("bonus",))
    # the grant's balance starts at its amount: its opening entry is written with the transaction
    if (await s.execute(_NEW_GRANT, {"g": req.grant_id, "p": req.player_id, "c": req.currency, "a": req.amount,
                                     "ms": req.max_stake, "pr": req.priority, "now": now})).first() is None:
        raise wallet_api.GRANT_EXISTS(f"grant {req.grant_id} exists", grant_id=req.grant_id)
    postings = ledger.bonus_grant(req.player_id, req.currency, req.amount)
    applied = await store.apply(s, postings, req.player_id, req.currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="bonus_grant", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             split=grants.split_of(0, req.amount, {req.grant_id: req.amount}),
                             balance=applied.balance, created_at=now, grant_id=req.grant_id)
    await store.record(s, result, applied.ids, postings,
                       details={"grant_id": req.grant_id, "max_stake": req.max_stake, "priority": req.priority})
    await _entry(s, result.transaction_id, req.grant_id, req.amount)
    await publish(s, BonusGranted(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                                  amount=req.amount, cash=0, bonus=req.amount, occurred_at=now,
                                  grant_id=req.grant_id), producer=PRODUCER)
    return result


_ENTRY = text("INSERT INTO grant_entries (transaction_id, grant_id, amount) VALUES (:tx, :g, :a)")


async def _entry(s: AsyncSession, tx: uuid.UUID, grant_id: str, amount: int) -> None:
    """An entry on a grant whose balance the statement before already set (grant, settle)."""
    if amount:
        await s.execute(_ENTRY, {"tx": tx, "g": grant_id, "a": amount})


async def _locked(s: AsyncSession, grant_id: str) -> tuple[uuid.UUID, str, int, str]:
    """(player, currency, balance, state) of the grant, with the player's bonus and cash accounts
    locked first and then the grant row (the global lock order)."""
    found = (await s.execute(_FIND_GRANT, {"g": grant_id})).one_or_none()
    if found is None:
        raise wallet_api.GRANT_NOT_FOUND(f"no grant {grant_id}", grant_id=grant_id)
    await store.balances(s, found.player_id, found.currency, lock=("bonus", "cash"))
    g = (await s.execute(_LOCK_GRANT, {"g": grant_id})).one()
    return g.player_id, g.currency, g.balance, g.state


def _closed(grant_id: str, state: str) -> Problem:
    return wallet_api.GRANT_CLOSED(f"grant {grant_id} is {state}", grant_id=grant_id, state=state)


async def settle(s: AsyncSession, grant_id: str, req: BonusSettleRequest, ctx: Context, *,
                 convert: bool) -> OperationResult:
    """Close one grant: convert min(cap, its balance) to cash and return the rest to the liability,
    or forfeit all of its balance. No other grant's money moves."""
    kind = "bonus_convert" if convert else "bonus_forfeit"
    reason = req.reason or ("completed" if convert else "forfeited")
    now = ctx.now()
    await store.claim(s, req.idempotency_key, kind, store.request_hash(kind, req, grant_id=grant_id))
    player_id, currency, balance, state = await _locked(s, grant_id)
    if state != grants.OPEN:
        raise _closed(grant_id, state)
    to_cash = min(req.amount if req.amount is not None else balance, balance) if convert else 0
    back = balance - to_cash
    postings = ledger.bonus_settle(player_id, currency, to_cash, back)
    applied = await store.apply(s, postings, player_id, currency)
    await s.execute(_CLOSE_GRANT, {"g": grant_id, "state": "converted" if convert else "forfeited", "now": now})
    amount = to_cash if convert else balance
    result = OperationResult(transaction_id=uuid.uuid4(), kind=kind, idempotency_key=req.idempotency_key,
                             player_id=player_id, currency=currency, amount=amount,
                             split=grants.split_of(to_cash, -balance, {grant_id: -balance}),
                             balance=applied.balance, created_at=now, grant_id=grant_id, noop=balance == 0)
    await store.record(s, result, applied.ids, postings,
                       details={"grant_id": grant_id, "reason": reason, "to_cash": to_cash, "forfeited": back})
    await _entry(s, result.transaction_id, grant_id, -balance)
    common = {"transaction_id": result.transaction_id, "player_id": player_id, "currency": currency,
              "amount": amount, "cash": to_cash, "bonus": -balance, "occurred_at": now, "grant_id": grant_id}
    event = BonusConverted(**common, forfeited=back) if convert else BonusForfeited(**common, reason=reason)
    await publish(s, event, producer=PRODUCER)
    return result


async def free_spin_win(s: AsyncSession, grant_id: str, req: FreeSpinWinRequest, ctx: Context) -> OperationResult:
    """A free spin's win, reported by the provider without a bet: liability → the grant. A closed
    grant refuses (grant-closed); a win of 0 is recorded (noop) so that its replay answers the same."""
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "free_spin_win",
                      store.request_hash("free_spin_win", req, grant_id=grant_id))
    player_id, currency, _, state = await _locked(s, grant_id)
    if player_id != req.player_id:
        raise wallet_api.GRANT_NOT_FOUND(f"grant {grant_id} belongs to another player", grant_id=grant_id)
    if currency != req.currency:
        raise wallet_api.CURRENCY_MISMATCH(f"expected {currency}, got {req.currency}", expected=currency,
                                           currency=req.currency)
    if state != grants.OPEN:
        raise _closed(grant_id, state)
    postings = ledger.free_spin_win(player_id, currency, req.amount)
    applied = await store.apply(s, postings, player_id, currency)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="free_spin_win", idempotency_key=req.idempotency_key,
                             player_id=player_id, currency=currency, amount=req.amount,
                             split=grants.split_of(0, req.amount, {grant_id: req.amount} if req.amount else {}),
                             balance=applied.balance, created_at=now, grant_id=grant_id, noop=req.amount == 0)
    await store.record(s, result, applied.ids, postings,
                       details={"grant_id": grant_id, "award_id": req.award_id, "round_id": req.round_id,
                                "game_id": req.game_id, "provider": req.provider})
    await grants.post(s, result.transaction_id, {grant_id: req.amount})
    await publish(s, FreeSpinWon(transaction_id=result.transaction_id, player_id=player_id, currency=currency,
                                 amount=req.amount, cash=0, bonus=req.amount, occurred_at=now, grant_id=grant_id,
                                 award_id=req.award_id, round_id=req.round_id, game_id=req.game_id,
                                 provider=req.provider), producer=PRODUCER)
    return result

