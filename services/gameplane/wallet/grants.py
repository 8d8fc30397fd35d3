"""Per-grant bonus money on the database: the player's open grants in spend order, moving a grant's
balance together with its sub-ledger row (grant_entries), and the money of a grant that closed
while a bet on it was still in play.

Lock order, as everywhere: idempotency key → round → player accounts (by kind) → grant rows (by
spend order) → platform accounts. Every change to a grant's balance happens with the player's
bonus account row locked, so the open grants' balances and that account move together."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import BonusForfeited, GrantBalance, OperationResult, Split
from gameplane.kit.outbox import publish
from gameplane.wallet import ledger, store
from gameplane.wallet.rules import PRODUCER

OPEN = "active"
SPEND_ORDER = "priority, created_at, grant_id"

_OPEN = text(f"SELECT grant_id, balance, max_stake FROM bonus_grants WHERE player_id = :p AND currency = :c "
             f"AND state = '{OPEN}' ORDER BY {SPEND_ORDER} FOR UPDATE")
_STATES = text(f"SELECT grant_id, state FROM bonus_grants WHERE grant_id = ANY(:ids) ORDER BY {SPEND_ORDER} "
               "FOR UPDATE")
_POST = text(
    "WITH d AS (SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:amounts AS bigint[])) AS d(grant_id, amount)), "
    "u AS (UPDATE bonus_grants g SET balance = g.balance + d.amount FROM d WHERE g.grant_id = d.grant_id "
    "RETURNING g.grant_id) "
    "INSERT INTO grant_entries (transaction_id, grant_id, amount) SELECT :tx, d.grant_id, d.amount FROM d "
    "JOIN u USING (grant_id)")
_LIST = text("SELECT grant_id, currency, balance, max_stake, priority, state, created_at FROM bonus_grants "
             f"WHERE player_id = :p AND currency = :c AND state = '{OPEN}' ORDER BY created_at, grant_id")
# A round's stake per grant plus :add (signed), without the zeros: the JSON object stays small.
STAKE_GRANTS = ("(SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb) FROM (SELECT key AS k, sum(value::bigint) AS v "
                "FROM (SELECT * FROM jsonb_each_text(rounds.stake_grants) UNION ALL "
                "SELECT * FROM jsonb_each_text(CAST(:add_grants AS jsonb))) x GROUP BY key "
                "HAVING sum(value::bigint) <> 0) y)")


# One more CTE for store.commit_with: the grants' balances and entries in the operation's one write
# (after `t`, the transaction row their entries point at). Binds: g_ids, g_amounts (signed).
POST_CTE = (", gd AS (SELECT * FROM unnest(CAST(:g_ids AS text[]), CAST(:g_amounts AS bigint[])) "
            "AS gd(grant_id, amount)), "
            "gu AS (UPDATE bonus_grants g SET balance = g.balance + gd.amount FROM gd WHERE g.grant_id = gd.grant_id), "
            "ge AS (INSERT INTO grant_entries (transaction_id, grant_id, amount) SELECT t.id, gd.grant_id, gd.amount "
            "FROM t, gd)")


def post_params(moves: Mapping[str, int]) -> dict[str, list[Any]]:
    moves = {g: v for g, v in moves.items() if v}
    return {"g_ids": list(moves), "g_amounts": list(moves.values())}


@dataclass(frozen=True, slots=True)
class Open:
    grant_id: str
    balance: int
    max_stake: int | None


async def open_grants(s: AsyncSession, player_id: uuid.UUID, currency: str) -> list[Open]:
    """The player's open grants in the currency, in spend order, locked."""
    rows = (await s.execute(_OPEN, {"p": player_id, "c": currency})).all()
    return [Open(r.grant_id, r.balance, r.max_stake) for r in rows]


def max_stake_refusal(grants: list[Open], amount: int) -> Exception | None:
    """403 bonus-max-stake when the stake is above the smallest max stake of the open grants (the
    caller asks only while the player holds bonus money)."""
    capped = [g for g in grants if g.max_stake is not None]
    if not capped:
        return None
    strictest = min(capped, key=lambda g: g.max_stake)  # type: ignore[arg-type, return-value]
    assert strictest.max_stake is not None
    if amount <= strictest.max_stake:
        return None
    return wallet_api.BONUS_MAX_STAKE(
        f"stake {amount} is above {strictest.max_stake}, the max stake of grant {strictest.grant_id} "
        "while the player holds bonus money", max_stake=strictest.max_stake, grant_id=strictest.grant_id)


async def open_of(s: AsyncSession, grant_ids: list[str]) -> set[str]:
    """Which of these grants are open (rows locked, in spend order)."""
    if not grant_ids:
        return set()
    return {r.grant_id for r in (await s.execute(_STATES, {"ids": grant_ids})).all() if r.state == OPEN}


async def post(s: AsyncSession, tx: uuid.UUID, moves: Mapping[str, int]) -> None:
    """Move the grants' balances and write their entries for transaction `tx` (already written)."""
    moves = {g: v for g, v in moves.items() if v}
    if moves:
        await s.execute(_POST, {"tx": tx, "ids": list(moves), "amounts": list(moves.values())})


def as_json(moves: Mapping[str, int]) -> str:
    return json.dumps(dict(moves))


async def forfeit_closed(s: AsyncSession, parent_key: str, player_id: uuid.UUID, currency: str,
                         orphans: Mapping[str, int], now: datetime) -> int:
    """A win or a rollback gave bonus money back to a grant that has closed since the bet (converted
    or forfeited meanwhile): the operation credits the player's bonus account exactly as its rule
    says (a rollback mirrors its bet), and this returns that money to the bonus liability, one
    transaction per grant (key `<operation's key>:closed-grant:<grant_id>`, event
    wallet.bonus_forfeited with reason "closed-grant"). The closed grant's own balance stays 0.
    Returns what went back in all."""
    total = 0
    for grant_id, amount in sorted(orphans.items()):
        if amount <= 0:
            continue
        key = f"{parent_key}:closed-grant:{grant_id}"
        await store.claim(s, key, "bonus_forfeit", "")
        postings = ledger.bonus_forfeit(player_id, currency, amount)
        applied = await store.apply(s, postings, player_id, currency)
        result = OperationResult(transaction_id=uuid.uuid4(), kind="bonus_forfeit", idempotency_key=key,
                                 player_id=player_id, currency=currency, amount=amount,
                                 split=Split(cash=0, bonus=-amount), balance=applied.balance, created_at=now,
                                 grant_id=grant_id)
        await store.record(s, result, applied.ids, postings,
                           details={"grant_id": grant_id, "reason": "closed-grant", "of": parent_key})
        await publish(s, BonusForfeited(transaction_id=result.transaction_id, player_id=player_id, currency=currency,
                                        amount=amount, cash=0, bonus=-amount, occurred_at=now, grant_id=grant_id,
                                        reason="closed-grant"), producer=PRODUCER)
        total += amount
    return total


def split_of(cash: int, bonus: int, moves: Mapping[str, int]) -> Split:
    return Split(cash=cash, bonus=bonus, grants=dict(moves) or None)


async def listing(s: AsyncSession, player_id: uuid.UUID, currency: str) -> list[GrantBalance]:
    rows = (await s.execute(_LIST, {"p": player_id, "c": currency})).all()
    return [GrantBalance(grant_id=r.grant_id, currency=r.currency, balance=r.balance, max_stake=r.max_stake,
                         priority=r.priority, state="open" if r.state == OPEN else r.state, created_at=r.created_at)
            for r in rows]
