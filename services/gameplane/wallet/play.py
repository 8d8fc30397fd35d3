"""Game play: bet, win, rollback. Lock order everywhere: idempotency key row → round row →
player accounts (by kind) → platform accounts. Each function runs inside one DB transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import (
    Balance,
    BetPlaced,
    BetRequest,
    OperationResult,
    RollbackRequest,
    RolledBack,
    Split,
    WinRequest,
    WinSettled,
)
from gameplane.kit.outbox import publish
from gameplane.kit.problems import Problem
from gameplane.wallet import grants, ledger, protection, store
from gameplane.wallet.ledger import InsufficientFunds, Posting, Ref
from gameplane.wallet.rules import PRODUCER, Context, check_currency, guard_bet, refuse

_ROUND_LOCK = text(
    "SELECT currency, stake_cash, stake_bonus, closed, paid_out FROM rounds "
    "WHERE provider = :pr AND player_id = :p AND round_id = :r FOR UPDATE")
_ROUND_STAKE = text(
    "UPDATE rounds SET stake_cash = stake_cash + :cash, stake_bonus = stake_bonus + :bonus, "
    f"stake_grants = {grants.STAKE_GRANTS} WHERE provider = :pr AND player_id = :p AND round_id = :r")


def _round_key(provider: str, player_id: uuid.UUID, round_id: str) -> dict[str, Any]:
    return {"pr": provider, "p": player_id, "r": round_id}


def _mismatch(expected: str, got: str) -> Problem:
    return wallet_api.CURRENCY_MISMATCH(f"expected {expected}, got {got}",
                   expected=expected, currency=got)


# The hot path: one statement claims the key, takes the round and locks the player's accounts (in
# that order: the target list is evaluated left to right); Python decides; one statement writes.
_CLAIM_SQL = ("WITH c AS (INSERT INTO operations (key, kind, request_hash) VALUES (:key, :kind, :hash) "
              "ON CONFLICT DO NOTHING RETURNING key), ")
_ACCOUNTS_SQL = ("b AS (SELECT kind, balance FROM accounts WHERE owner = :o AND currency = :c AND shard = 0 "
                 "ORDER BY kind FOR UPDATE) ")
_BALANCES_SQL = ("coalesce((SELECT balance FROM b WHERE kind = 'cash'), 0) AS cash, "
                 "coalesce((SELECT balance FROM b WHERE kind = 'bonus'), 0) AS bonus, "
                 "coalesce((SELECT balance FROM b WHERE kind = 'withdrawal_hold'), 0) AS hold ")
_BET_START = text(
    _CLAIM_SQL
    + "r AS (INSERT INTO rounds (provider, player_id, round_id, currency, game_id) VALUES (:pr, :p, :r, :c, :g) "
    "ON CONFLICT (provider, player_id, round_id) DO UPDATE SET currency = rounds.currency RETURNING currency, closed), "
    + _ACCOUNTS_SQL
    + "SELECT (SELECT key FROM c) AS claimed, (SELECT currency FROM r) AS round_currency, "
    "(SELECT closed FROM r) AS closed, " + _BALANCES_SQL
    + ", p.currency AS p_currency, p.limits, p.timeout_until, p.self_excluded_until "
    "FROM (VALUES (1)) AS one(x) LEFT JOIN protection p ON p.player_id = :p")
_BET_COMMIT = store.commit_with(
    ", rs AS (UPDATE rounds SET stake_cash = stake_cash + :r_sc, stake_bonus = stake_bonus + :r_sb "
    "WHERE provider = :r_pr AND player_id = :r_p AND round_id = :r_id)")
# a bet that drew on grants also adds its draw to the round's stake per grant
_BET_COMMIT_GRANTS = store.commit_with(
    ", rs AS (UPDATE rounds SET stake_cash = stake_cash + :r_sc, stake_bonus = stake_bonus + :r_sb, "
    f"stake_grants = {grants.STAKE_GRANTS} WHERE provider = :r_pr AND player_id = :r_p AND round_id = :r_id)"
    + grants.POST_CTE)
_WIN_START = text(
    _CLAIM_SQL
    + "r AS (SELECT currency, stake_cash, stake_bonus, stake_grants, closed FROM rounds "
    "WHERE provider = :pr AND player_id = :p AND round_id = :r FOR UPDATE), "
    + _ACCOUNTS_SQL
    + "SELECT (SELECT key FROM c) AS claimed, (SELECT currency FROM r) AS round_currency, "
    "(SELECT closed FROM r) AS closed, (SELECT stake_cash FROM r) AS stake_cash, "
    "(SELECT stake_bonus FROM r) AS stake_bonus, (SELECT stake_grants FROM r) AS stake_grants, " + _BALANCES_SQL)
_WIN_ROUND = (", rw AS (UPDATE rounds SET won = won + :w_amount, paid_out = paid_out OR :w_amount > 0, "
              "closed = closed OR :w_close WHERE provider = :r_pr AND player_id = :r_p AND round_id = :r_id)")
_WIN_COMMIT = store.commit_with(_WIN_ROUND)
_WIN_COMMIT_GRANTS = store.commit_with(_WIN_ROUND + grants.POST_CTE)


def _closed(round_id: str) -> Problem:
    return wallet_api.ROUND_CLOSED(f"round {round_id} is closed", round_id=round_id)


async def bet(s: AsyncSession, req: BetRequest, ctx: Context) -> OperationResult:
    check_currency(req.currency)
    now = ctx.now()
    row = (await s.execute(_BET_START, {
        "key": req.idempotency_key, "kind": "bet", "hash": store.request_hash("bet", req), "pr": req.provider,
        "p": req.player_id, "r": req.round_id, "c": req.currency, "g": req.game_id, "o": str(req.player_id)})).one()
    if row.claimed is None:
        await store.answered(s, req.idempotency_key, "bet", store.request_hash("bet", req))
    state = store.protection_state(row.p_currency, row.limits, row.timeout_until, row.self_excluded_until, now)
    if (r := protection.blocked(state, now)) is not None:
        raise refuse(r)
    if row.round_currency != req.currency:
        raise _mismatch(row.round_currency, req.currency)
    if row.closed:
        raise _closed(req.round_id)
    await guard_bet(s, state, req.player_id, req.currency, req.amount, now)
    held = Balance(currency=req.currency, cash=row.cash, bonus=row.bonus, withdrawal_hold=row.hold)
    # only a player holding bonus money reads their grants: a cash-only bet costs nothing more
    open_grants = await grants.open_grants(s, req.player_id, req.currency) if held.bonus > 0 else []
    if (refusal := grants.max_stake_refusal(open_grants, req.amount)) is not None:
        raise refusal
    try:
        sp = ledger.split_stake(req.amount, held.cash, held.bonus)
    except InsufficientFunds:
        raise wallet_api.INSUFFICIENT_FUNDS(f"stake {req.amount} exceeds playable balance {held.cash + held.bonus}",
                      balance=held.model_dump())
    drawn = ledger.draw(sp.bonus, [(g.grant_id, g.balance) for g in open_grants])
    postings = ledger.bet(req.player_id, req.currency, sp, ledger.house_shard(req.idempotency_key, ctx.house_shards))
    after = Balance(currency=req.currency, cash=held.cash - sp.cash, bonus=held.bonus - sp.bonus,
                    withdrawal_hold=held.withdrawal_hold)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="bet", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             split=grants.split_of(sp.cash, sp.bonus, drawn), balance=after, created_at=now)
    event = BetPlaced(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                      amount=req.amount, cash=sp.cash, bonus=sp.bonus, occurred_at=now, round_id=req.round_id,
                      game_id=req.game_id, provider=req.provider, grants=drawn)
    round_stake = {"r_sc": sp.cash, "r_sb": sp.bonus, "r_pr": req.provider, "r_p": req.player_id,
                   "r_id": req.round_id}
    await store.commit(s, result, postings, event,
                       details={"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
                                **({"session_id": str(req.session_id)} if req.session_id else {})},
                       extra=(_BET_COMMIT_GRANTS, {**round_stake, "add_grants": grants.as_json(drawn),
                                                   **grants.post_params({g: -v for g, v in drawn.items()})})
                       if drawn else (_BET_COMMIT, round_stake))
    return result


async def win(s: AsyncSession, req: WinRequest, ctx: Context) -> OperationResult:
    check_currency(req.currency)
    now = ctx.now()
    row = (await s.execute(_WIN_START, {
        "key": req.idempotency_key, "kind": "win", "hash": store.request_hash("win", req), "pr": req.provider,
        "p": req.player_id, "r": req.round_id, "c": req.currency, "o": str(req.player_id)})).one()
    if row.claimed is None:
        await store.answered(s, req.idempotency_key, "win", store.request_hash("win", req))
    if row.round_currency is None:
        raise wallet_api.BET_NOT_FOUND(f"round {req.round_id} has no bet from this player", round_id=req.round_id)
    if row.round_currency != req.currency:
        raise _mismatch(row.round_currency, req.currency)
    if row.closed:
        raise _closed(req.round_id)
    sp = ledger.split_win(req.amount, ledger.Split(row.stake_cash, row.stake_bonus))
    per, still_open = await _win_grants(s, req, sp.bonus, row.stake_grants or {})
    orphans = {g: v for g, v in per.items() if g not in still_open}
    postings = ledger.win(req.player_id, req.currency, sp, ledger.house_shard(req.idempotency_key, ctx.house_shards))
    after = Balance(currency=req.currency, cash=row.cash + sp.cash,
                    bonus=row.bonus + sp.bonus - sum(orphans.values()), withdrawal_hold=row.hold)
    result = OperationResult(transaction_id=uuid.uuid4(), kind="win", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=req.amount,
                             split=grants.split_of(sp.cash, sp.bonus, per), balance=after, created_at=now)
    event = WinSettled(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                       amount=req.amount, cash=sp.cash, bonus=sp.bonus, occurred_at=now, round_id=req.round_id,
                       game_id=req.game_id, provider=req.provider, round_closed=req.close_round, grants=per)
    await store.commit(s, result, postings, event,
                       details={"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
                                "close_round": req.close_round},
                       extra=(_WIN_COMMIT_GRANTS if still_open else _WIN_COMMIT,
                              {"w_amount": req.amount, "w_close": req.close_round, "r_pr": req.provider,
                               "r_p": req.player_id, "r_id": req.round_id,
                               **grants.post_params({g: v for g, v in per.items() if g in still_open})}))
    await grants.forfeit_closed(s, req.idempotency_key, req.player_id, req.currency, orphans, now)
    return result


async def _win_grants(s: AsyncSession, req: WinRequest, bonus: int,
                      stake_grants: dict[str, int]) -> tuple[dict[str, int], set[str]]:
    """A win's bonus part per grant (in the proportion of the round's stake per grant) and which of
    those grants are still open (locked). A round staked before migration 0008 has no stake per
    grant: its bonus part goes to the player's first open grant in spend order (none: it is
    returned to the liability like a closed grant's)."""
    if bonus <= 0:
        return {}, set()
    if stake_grants:
        per = ledger.share(bonus, {g: int(v) for g, v in stake_grants.items()})
        return per, await grants.open_of(s, sorted(per))
    first = await grants.open_grants(s, req.player_id, req.currency)
    if first:
        return {first[0].grant_id: bonus}, {first[0].grant_id}
    return {f"legacy-round-{req.round_id}": bonus}, set()


_TOMBSTONE = text("INSERT INTO operations (key, kind, request_hash) VALUES (:key, 'tombstone', '') "
                  "ON CONFLICT DO NOTHING RETURNING key")
_BET_OP = text("SELECT kind, transaction_id, rolled_back_by FROM operations WHERE key = :key FOR UPDATE")
_BET_TX = text("SELECT player_id, currency, amount, cash, bonus, details FROM transactions WHERE id = :tx")
_BET_GRANTS = text("SELECT grant_id, amount FROM grant_entries WHERE transaction_id = :tx")
_BET_ENTRIES = text(
    "SELECT a.owner, a.kind, a.currency, a.shard, e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
    "WHERE e.transaction_id = :tx")
_MARK_ROLLED_BACK = text("UPDATE operations SET rolled_back_by = :rb WHERE key = :key")


async def rollback(s: AsyncSession, req: RollbackRequest, ctx: Context) -> OperationResult:
    """Undo a bet exactly. Unknown bet → a tombstone on its key (the late bet is refused) and a
    no-op answer; already rolled back → no-op; the round already paid out → refused."""
    check_currency(req.currency)
    now = ctx.now()
    await store.claim(s, req.idempotency_key, "rollback", store.request_hash("rollback", req))

    async def noop(bet_tx: uuid.UUID | None) -> OperationResult:
        bal = await store.balances(s, req.player_id, req.currency)
        result = OperationResult(transaction_id=uuid.uuid4(), kind="rollback", idempotency_key=req.idempotency_key,
                                 player_id=req.player_id, currency=req.currency, amount=0,
                                 split=Split(cash=0, bonus=0), balance=bal, created_at=now, noop=True)
        await store.record(s, result, {}, [], details={"bet_idempotency_key": req.bet_idempotency_key,
                                                        "bet_transaction_id": str(bet_tx) if bet_tx else None})
        return result

    if req.bet_idempotency_key == req.idempotency_key:
        raise Problem(422, "validation-error", "A rollback needs its own idempotency key")
    if (await s.execute(_TOMBSTONE, {"key": req.bet_idempotency_key})).first() is not None:
        return await noop(None)
    op = (await s.execute(_BET_OP, {"key": req.bet_idempotency_key})).one()
    if op.kind == "tombstone":
        return await noop(None)
    if op.kind != "bet":
        raise wallet_api.BET_NOT_FOUND(f"{req.bet_idempotency_key!r} is a {op.kind}, not a bet")
    if op.rolled_back_by is not None:
        return await noop(op.transaction_id)
    bet_tx = (await s.execute(_BET_TX, {"tx": op.transaction_id})).one()
    if bet_tx.player_id != req.player_id:
        raise wallet_api.BET_NOT_FOUND("the bet belongs to another player")
    if bet_tx.currency != req.currency:
        raise _mismatch(bet_tx.currency, req.currency)
    details = bet_tx.details or {}
    rk = _round_key(details["provider"], req.player_id, details["round_id"])
    rnd = (await s.execute(_ROUND_LOCK, rk)).one()
    if rnd.paid_out:
        raise wallet_api.ROUND_SETTLED(f"round {details['round_id']} has a win; its bets can no longer be rolled back",
                      round_id=details["round_id"])
    bet_postings = [Posting(Ref(r.owner, r.kind, r.currency, r.shard), r.amount)
                    for r in (await s.execute(_BET_ENTRIES, {"tx": op.transaction_id})).all()]
    postings = ledger.mirror(bet_postings)
    # what the bet drew per grant (its grant entries are debits): given back to each grant
    drawn = {r.grant_id: -r.amount for r in (await s.execute(_BET_GRANTS, {"tx": op.transaction_id})).all()}
    applied = await store.apply(s, postings, req.player_id, req.currency)
    still_open = await grants.open_of(s, sorted(drawn))
    orphans = {g: v for g, v in drawn.items() if g not in still_open}
    await s.execute(_ROUND_STAKE, {**rk, "cash": -bet_tx.cash, "bonus": -bet_tx.bonus,
                                   "add_grants": grants.as_json({g: -v for g, v in drawn.items()})})
    balance = applied.balance.model_copy(update={"bonus": applied.balance.bonus - sum(orphans.values())})
    result = OperationResult(transaction_id=uuid.uuid4(), kind="rollback", idempotency_key=req.idempotency_key,
                             player_id=req.player_id, currency=req.currency, amount=bet_tx.amount,
                             split=grants.split_of(bet_tx.cash, bet_tx.bonus, drawn), balance=balance,
                             created_at=now)
    await s.execute(_MARK_ROLLED_BACK, {"rb": result.transaction_id, "key": req.bet_idempotency_key})
    await store.record(s, result, applied.ids, postings, reverses=op.transaction_id,
                       details={"bet_idempotency_key": req.bet_idempotency_key, "round_id": details["round_id"],
                                "game_id": details.get("game_id"), "provider": details["provider"]})
    await grants.post(s, result.transaction_id, {g: v for g, v in drawn.items() if g in still_open})
    await publish(s, RolledBack(transaction_id=result.transaction_id, player_id=req.player_id, currency=req.currency,
                                amount=bet_tx.amount, cash=bet_tx.cash, bonus=bet_tx.bonus, occurred_at=now,
                                bet_transaction_id=op.transaction_id, round_id=details["round_id"],
                                game_id=details.get("game_id"), provider=req.provider, grants=drawn),
                  producer=PRODUCER)
    await grants.forfeit_closed(s, req.idempotency_key, req.player_id, req.currency, orphans, now)
    return result
