"""Deposits on bare asyncpg (Database.pool) for the common case: the statements of
`cashier.deposit` (claim, cash lock, balances, the one write of store.commit), without SQLAlchemy's
per-statement work, which was most of a deposit's CPU in a webhook storm.

It declines (returns None, having changed nothing: its transaction rolls back) whenever the answer
is not a plain credit: a key already taken (a replay or a conflict), player protection that could
refuse it (self-exclusion, time-out, a deposit limit). `cashier.deposit` answers those, with its
exact replay or problem."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
from sqlalchemy import TextClause

from gameplane.contracts.wallet import DepositRequest, OperationResult
from gameplane.kit.outbox import staged
from gameplane.wallet import cashier, protection, store
from gameplane.wallet.fastplay import FAST_PATH
from gameplane.wallet.rules import PRODUCER, Context, check_currency

_OUTCOMES = {out: FAST_PATH.labels("deposit", out) for out in ("served", "declined")}
_NAME = re.compile(r"(?<![:\w]):(\w+)")


def positional(clause: TextClause | str) -> tuple[str, list[str]]:
    """A SQLAlchemy text() statement with :named binds as asyncpg's $n, and the names in order."""
    sql = clause.text if isinstance(clause, TextClause) else clause
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return _NAME.sub(number, sql), names


_CLAIM, _CLAIM_ARGS = positional(store.CLAIM)
_LOCK_CASH, _LOCK_CASH_ARGS = positional(store.LOCK_CASH)
_STATE, _STATE_ARGS = positional(cashier.DEPOSIT_STATE)
_COMMIT, _COMMIT_ARGS = positional(store.COMMIT_PLAIN)


def _args(names: list[str], values: dict[str, Any]) -> list[Any]:
    return [values[n] for n in names]


async def deposit(pool: asyncpg.Pool, req: DepositRequest, ctx: Context) -> OperationResult | None:
    check_currency(req.currency)
    now = ctx.now()
    owner = str(req.player_id)
    async with pool.acquire() as con, con.transaction():
        claimed = await con.fetchrow(_CLAIM, *_args(_CLAIM_ARGS, {
            "key": req.idempotency_key, "kind": "deposit", "hash": store.request_hash("deposit", req),
            "player": req.player_id}))
        assert claimed is not None
        if claimed["claimed"] is None:
            return None
        state = store.protection_state(claimed["currency"], _json(claimed["limits"]), claimed["timeout_until"],
                                       claimed["self_excluded_until"], now)
        if not req.received and (protection.blocked(state, now) is not None
                                 or protection.windowed(state, "deposit", req.currency)):
            raise _Declined
        cash = await con.fetchval(_LOCK_CASH, *_args(_LOCK_CASH_ARGS, {"o": owner, "c": req.currency}))
        row = await con.fetchrow(_STATE, *_args(_STATE_ARGS, {"o": owner, "c": req.currency, "p": req.player_id}))
        assert row is not None
        credit = cashier.credit_of(req, now, cash, row["receivable"], row["bonus"], row["hold"], row["first"])
        applied = await con.fetchval(_COMMIT, *_args(_COMMIT_ARGS, store.commit_params(
            credit.result, credit.postings, staged(credit.event, producer=PRODUCER), details=credit.details)))
        if applied != len(store.merge(credit.postings)):
            raise _Declined  # a guard refused: cannot happen to a deposit, but then nothing may commit
    return credit.result


class _Declined(Exception):
    """Raised inside the transaction so that it rolls back; deposit() answers None."""


async def deposit_or_none(pool: asyncpg.Pool, req: DepositRequest, ctx: Context) -> OperationResult | None:
    """The credit's answer, or None (declined, or a deadlock): `cashier.deposit` answers it (counted in
    gameplane_wallet_fast_path_total{operation="deposit"} as served or declined)."""
    try:
        result = await deposit(pool, req, ctx)
    except _Declined:
        result = None
    except asyncpg.PostgresError as exc:  # rolled back whole; cashier.deposit runs it again (and retries)
        if exc.sqlstate not in store.RETRYABLE_SQLSTATES:
            raise
        result = None
    _OUTCOMES["served" if result is not None else "declined"].inc()
    return result


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
