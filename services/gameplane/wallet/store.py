"""Core SQL on the hot path: claim an idempotency key, move balances, write the immutable
transaction. Every function runs inside the caller's transaction (one per operation)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import Balance, OperationResult
from gameplane.kit.events import Event
from gameplane.kit.outbox import staged
from gameplane.kit.problems import Problem
from gameplane.wallet import ledger
from gameplane.wallet.ledger import Posting, Ref
from gameplane.wallet.protection import State, effective_limits


def request_hash(kind: str, request: BaseModel, **extra: Any) -> str:
    """Canonical hash of what was asked: same key + same hash is a replay, else a conflict."""
    doc = {"kind": kind, "request": request.model_dump(mode="json"), **{k: str(v) for k, v in extra.items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# deadlock, serialization failure: the transaction rolled back whole, so it is safe to run again
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class Replay(Exception):
    """The key was already answered; the stored answer goes back unchanged."""

    def __init__(self, result: OperationResult) -> None:
        self.result = result


def duplicate(key: str) -> Problem:
    return wallet_api.DUPLICATE_TRANSACTION(f"key {key!r} was used with a different request", idempotency_key=key)


CLAIM = text(
    "WITH c AS (INSERT INTO operations (key, kind, request_hash) VALUES (:key, :kind, :hash) "
    "ON CONFLICT DO NOTHING RETURNING key) "
    "SELECT (SELECT key FROM c) AS claimed, p.currency, p.limits, p.timeout_until, p.self_excluded_until "
    "FROM (VALUES (1)) AS one(x) LEFT JOIN protection p ON p.player_id = :player")
_EXISTING = text("SELECT kind, request_hash, response FROM operations WHERE key = :key")


async def claim(s: AsyncSession, key: str, kind: str, hash_: str, player_id: uuid.UUID | None = None,
                now: datetime | None = None) -> State | None:
    """Insert the key first: a concurrent duplicate blocks on it until we commit, then replays.

    Raises Replay (same request answered before) or a 409 problem; returns the player's protection
    state (None when the player has none) read in the same round trip."""
    row = (await s.execute(CLAIM, {"key": key, "kind": kind, "hash": hash_, "player": player_id})).one()
    if row.claimed is None:
        await answered(s, key, kind, hash_)
    if now is None:
        return None
    return protection_state(row.currency, row.limits, row.timeout_until, row.self_excluded_until, now)


async def answered(s: AsyncSession, key: str, kind: str, hash_: str) -> NoReturn:
    """The key is taken: replay its answer, or refuse. Always raises (the caller's transaction,
    with anything it did speculatively, rolls back)."""
    prior = (await s.execute(_EXISTING, {"key": key})).one()
    if prior.kind == "tombstone" and kind == "bet":
        raise wallet_api.BET_ROLLED_BACK(f"a rollback for {key!r} was processed first; the bet is refused",
                                         idempotency_key=key)
    if prior.kind != kind or prior.request_hash != hash_ or prior.response is None:
        raise duplicate(key)
    raise Replay(OperationResult.model_validate(prior.response))


def protection_state(currency: str | None, limits: Any, timeout_until: datetime | None,
                     self_excluded_until: datetime | None, now: datetime) -> State | None:
    if currency is None:
        return None
    return State(currency, effective_limits(limits or [], now), timeout_until, self_excluded_until)


def merge(postings: Iterable[Posting]) -> list[Posting]:
    """One posting per account, in the global lock order (ON CONFLICT may touch a row only once)."""
    sums: dict[Ref, int] = defaultdict(int)
    for p in postings:
        sums[p.ref] += p.amount
    return ledger.lock_order(Posting(r, a) for r, a in sums.items() if a != 0)


# Both statements below start by posting the entries' deltas onto the account rows: insert a
# missing account, else add the delta. The proposed row must pass the CHECK even when it
# conflicts, so a posting that needs a balance (a guarded player debit, a receivable credit)
# proposes 0 and the real delta is looked up again in the UPDATE; a new row proposed for such a
# posting means the account did not exist: no funds, or no debt (caught via `inserted`). The
# WHERE is the conditional guard: a guarded player account (all but the receivable) that would go
# below zero, or a receivable that would go above it, updates nothing. _NEEDS_BALANCE is
# gameplane.wallet.ledger.needs_balance in SQL.
_NEEDS_BALANCE = ("owner <> 'platform' AND ((kind <> 'receivable' AND amount < 0) "
                  "OR (kind = 'receivable' AND amount > 0))")
_DELTA = ("(SELECT amount FROM d WHERE d.owner = accounts.owner AND d.kind = accounts.kind "
          "AND d.currency = accounts.currency AND d.shard = accounts.shard)")
_UPSERT_BALANCES = (
    "WITH d AS (SELECT * FROM unnest(CAST(:owners AS text[]), CAST(:kinds AS text[]), CAST(:curs AS text[]), "
    "  CAST(:shards AS int[]), CAST(:amounts AS bigint[])) "
    "  WITH ORDINALITY AS d(owner, kind, currency, shard, amount, n)),"
    " u AS (INSERT INTO accounts (owner, kind, currency, shard, balance) "
    "  SELECT owner, kind, currency, shard, "
    f"  CASE WHEN {_NEEDS_BALANCE} THEN 0 ELSE amount END "
    "  FROM d ORDER BY n "
    "  ON CONFLICT (owner, kind, currency, shard) DO UPDATE "
    f"  SET balance = accounts.balance + {_DELTA}, updated_at = now() "
    "  WHERE accounts.owner = 'platform' "
    f"   OR (accounts.kind <> 'receivable' AND accounts.balance + {_DELTA} >= 0) "
    f"   OR (accounts.kind = 'receivable' AND accounts.balance + {_DELTA} <= 0) "
)

_APPLY = text(
    _UPSERT_BALANCES
    + "  RETURNING id, owner, kind, currency, shard, balance, xmax = 0 AS inserted) "
    "SELECT id, owner, kind, currency, shard, balance, true AS touched, inserted FROM u "
    "UNION ALL SELECT a.id, a.owner, a.kind, a.currency, a.shard, a.balance, false, false FROM accounts a "
    "WHERE a.owner = :player AND a.currency = :currency AND a.shard = 0 "
    "AND a.kind NOT IN (SELECT kind FROM u WHERE owner = :player)")


@dataclass
class Applied:
    ids: dict[Ref, int]
    balance: Balance


async def apply(s: AsyncSession, postings: list[Posting], player_id: uuid.UUID, currency: str) -> Applied:
    """Move balances (creating accounts on first use) and return the player's balances after it.
    Player accounts never go negative: the conditional update refuses, the CHECK is the backstop."""
    merged = merge(postings)
    owner = str(player_id)
    params = {"owners": [p.ref.owner for p in merged], "kinds": [p.ref.kind for p in merged],
              "curs": [p.ref.currency for p in merged], "shards": [p.ref.shard for p in merged],
              "amounts": [p.amount for p in merged], "player": owner, "currency": currency}
    try:
        rows = (await s.execute(_APPLY, params)).all()
    except IntegrityError as exc:  # the CHECK caught what the guard should have: still a refusal
        if "player_non_negative" in str(exc) or "receivable_non_positive" in str(exc):
            raise wallet_api.INSUFFICIENT_FUNDS("the account has no funds")
        raise
    debits = {p.ref for p in merged if ledger.needs_balance(p)}
    ids: dict[Ref, int] = {}
    bal: dict[str, int] = {}
    for r in rows:
        ref = Ref(r.owner, r.kind, r.currency, r.shard)
        if r.touched and not (r.inserted and ref in debits):
            ids[ref] = r.id
        if r.owner == owner and r.currency == currency and r.shard == 0:
            bal[r.kind] = r.balance
    balance = to_balance(currency, bal)
    if len(ids) != len(merged):
        short = [p for p in merged if p.ref not in ids]
        raise wallet_api.INSUFFICIENT_FUNDS(f"{short[0].ref.kind} cannot cover {-short[0].amount} {currency}",
                      balance=balance.model_dump())
    return Applied(ids, balance)


_RECORD = text(
    "WITH t AS (INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash, bonus,"
    "   reverses, details, created_at) "
    "  VALUES (:tx, :key, :kind, :player, :currency, :amount, :cash, :bonus, :reverses, CAST(:details AS jsonb),"
    "   :created_at) RETURNING id),"
    " e AS (INSERT INTO entries (transaction_id, account_id, currency, amount) "
    "  SELECT t.id, u.account_id, :currency, u.amount FROM t, "
    "  unnest(CAST(:account_ids AS bigint[]), CAST(:amounts AS bigint[])) AS u(account_id, amount))"
    " UPDATE operations SET transaction_id = :tx, response = CAST(:response AS jsonb) WHERE key = :key")


async def record(s: AsyncSession, result: OperationResult, applied_ids: dict[Ref, int], postings: list[Posting],
                 *, reverses: uuid.UUID | None = None, details: dict[str, Any] | None = None) -> None:
    """Write the transaction, its entries and the stored answer in one round trip."""
    merged = merge(postings)
    cash = result.split.cash if result.split else 0
    bonus = result.split.bonus if result.split else 0
    await s.execute(_RECORD, {
        "tx": result.transaction_id, "key": result.idempotency_key, "kind": result.kind,
        "player": result.player_id, "currency": result.currency, "amount": result.amount, "cash": cash,
        "bonus": bonus, "reverses": reverses, "details": json.dumps(details or {}), "created_at": result.created_at,
        "account_ids": [applied_ids[p.ref] for p in merged], "amounts": [p.amount for p in merged],
        "response": result.model_dump_json()})


def to_balance(currency: str, by_kind: dict[str, int]) -> Balance:
    """A player's balances from their account rows (kind -> stored balance); the receivable is
    reported as the positive amount owed, and only once the player has that account."""
    owed = by_kind.get(ledger.RECEIVABLE)
    return Balance(currency=currency, cash=by_kind.get("cash", 0), bonus=by_kind.get("bonus", 0),
                   withdrawal_hold=by_kind.get("withdrawal_hold", 0), receivable=None if owed is None else -owed)


# Creates the cash row if missing and locks it either way: DO UPDATE takes the row lock and
# returns the newest committed balance (a SELECT ... FOR UPDATE would also wait, but then judge
# only the rows its snapshot had: not a receivable a chargeback created meanwhile).
LOCK_CASH = text("INSERT INTO accounts AS a (owner, kind, currency) VALUES (:o, 'cash', :c) "
                  "ON CONFLICT (owner, kind, currency, shard) DO UPDATE SET balance = a.balance RETURNING balance")
_LOCK_DEBT = text("SELECT balance FROM accounts WHERE owner = :o AND kind = 'receivable' AND currency = :c "
                  "AND shard = 0 FOR UPDATE")


async def lock_cash_and_debt(s: AsyncSession, player_id: uuid.UUID, currency: str) -> tuple[int, int]:
    """(cash, owed) under lock. The cash row, created if missing, is the player's lock for every
    operation on the receivable (deposits and chargebacks), so one never decides on a debt or a
    cash balance the other is changing. The receivable is read by a second statement, after the
    cash lock is held, so its snapshot includes whatever the previous holder committed."""
    params = {"o": str(player_id), "c": currency}
    cash = (await s.execute(LOCK_CASH, params)).scalar_one()
    debt = (await s.execute(_LOCK_DEBT, params)).scalar_one_or_none()
    return cash, -(debt or 0)


async def balances(s: AsyncSession, player_id: uuid.UUID, currency: str, *,
                   lock: tuple[str, ...] = ()) -> Balance:
    """Read a player's balances; `lock` names the kinds to lock (taken in kind order, as everywhere)."""
    if lock:
        sql = ("SELECT kind, balance FROM accounts WHERE owner = :o AND currency = :c AND shard = 0 "
               "AND kind = ANY(:kinds) ORDER BY kind FOR UPDATE")
    else:
        sql = "SELECT kind, balance FROM accounts WHERE owner = :o AND currency = :c AND shard = 0"
    params: dict[str, Any] = {"o": str(player_id), "c": currency, "kinds": list(lock)}
    return to_balance(currency, dict((await s.execute(text(sql), params)).tuples().all()))


_COMMIT = (
    _UPSERT_BALANCES
    + "  RETURNING id, owner, kind, currency, shard, xmax = 0 AS inserted),"
    " t AS (INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash, bonus,"
    "   reverses, details, created_at) "
    "  VALUES (:tx, :key, :kind, :player, :currency, :amount, :cash, :bonus, :reverses, CAST(:details AS jsonb),"
    "   :created_at) RETURNING id),"
    " e AS (INSERT INTO entries (transaction_id, account_id, currency, amount) "
    "  SELECT t.id, u.id, u.currency, d.amount FROM t, u JOIN d USING (owner, kind, currency, shard)),"
    " o AS (UPDATE operations SET transaction_id = :tx, response = CAST(:response AS jsonb) WHERE key = :key),"
    " ob AS (INSERT INTO outbox (id, subject, headers, payload) "
    "  VALUES (:ev_id, :ev_subject, CAST(:ev_headers AS jsonb), CAST(:ev_payload AS jsonb)))"
    "{extra}"
    " SELECT (SELECT count(*) FROM u JOIN d USING (owner, kind, currency, shard) "
    "  WHERE NOT (u.inserted AND d.owner <> 'platform' AND ((d.kind <> 'receivable' AND d.amount < 0) "
    "   OR (d.kind = 'receivable' AND d.amount > 0)))) AS applied")
COMMIT_PLAIN = text(_COMMIT.format(extra=""))


async def commit(s: AsyncSession, result: OperationResult, postings: list[Posting], event: Event, *,
                 details: dict[str, Any] | None = None, reverses: uuid.UUID | None = None,
                 extra: tuple[Any, dict[str, Any]] | None = None) -> None:
    """The hot path's single write: balances (guarded), transaction, entries, stored answer and
    outbox row in one statement. The caller computed the answer from balances it holds locked;
    `extra` is one more CTE (compiled text with its own binds) that must commit with it.

    No NOTIFY here, on purpose: a NOTIFY per bet serialises commits on Postgres' notify lock and
    wakes the relay for a transaction per bet. Bet/win events go out with the relay's poll (≤ 1 s,
    in batches), which is what analytics, bonus and risk need from them."""
    merged = merge(postings)
    params = commit_params(result, merged, staged(event, producer="wallet"), details=details, reverses=reverses)
    stmt = COMMIT_PLAIN
    if extra is not None:
        stmt, extra_params = extra
        params.update(extra_params)
    row = (await s.execute(stmt, params)).one()
    if row.applied != len(merged):  # the guard refused a debit: nothing of this may commit
        raise wallet_api.INSUFFICIENT_FUNDS("a balance changed under the operation",
                      balance=result.balance.model_dump())


def commit_params(result: OperationResult, postings: list[Posting], event: dict[str, Any], *,
                  details: dict[str, Any] | None = None, reverses: uuid.UUID | None = None) -> dict[str, Any]:
    """The binds of COMMIT_PLAIN (`event`: the outbox row, kit.outbox.staged)."""
    merged = merge(postings)
    split = result.split
    return {
        "owners": [p.ref.owner for p in merged], "kinds": [p.ref.kind for p in merged],
        "curs": [p.ref.currency for p in merged], "shards": [p.ref.shard for p in merged],
        "amounts": [p.amount for p in merged],
        "tx": result.transaction_id, "key": result.idempotency_key, "kind": result.kind, "player": result.player_id,
        "currency": result.currency, "amount": result.amount, "cash": split.cash if split else 0,
        "bonus": split.bonus if split else 0, "reverses": reverses, "details": json.dumps(details or {}),
        "created_at": result.created_at, "response": result.model_dump_json(),
        **{f"ev_{k}": v for k, v in event.items()},
    }


def commit_with(extra_cte: str) -> Any:
    """Compile the commit statement once with one extra CTE, e.g. ', r AS (UPDATE rounds ...)'."""
    return text(_COMMIT.format(extra=extra_cte))
