"""Operation context and the refusals shared by every operation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import DepositAllowance
from gameplane.kit.money import CurrencyError, exponent
from gameplane.kit.problems import Problem
from gameplane.wallet import protection
from gameplane.wallet.protection import Refusal, State
from gameplane.wallet.store import protection_state

PRODUCER = "wallet"


@dataclass(frozen=True)
class Context:
    house_shards: int = 16
    hold_ttl_seconds: int = 7 * 24 * 3600
    clock: object = field(default=None)  # tests may pin time; None means the real clock

    def now(self) -> datetime:
        return self.clock() if callable(self.clock) else datetime.now(UTC)


def check_currency(currency: str) -> None:
    try:
        exponent(currency)
    except CurrencyError as exc:
        raise wallet_api.UNSUPPORTED_CURRENCY(str(exc), currency=currency)


def refuse(refusal: Refusal) -> Problem:
    return wallet_api.PLAYER_BLOCKED(refusal.detail,
                   reason=refusal.reason)


_WINDOW_SUMS = (
    "SELECT coalesce(sum({expr}) FILTER (WHERE created_at > CAST(:now AS timestamptz) - interval '1 day'), 0) AS day,"
    " coalesce(sum({expr}) FILTER (WHERE created_at > CAST(:now AS timestamptz) - interval '7 days'), 0) AS week,"
    " coalesce(sum({expr}), 0) AS month "
    "FROM transactions WHERE player_id = :p AND currency = :c AND kind = ANY(:kinds) "
    "AND created_at > CAST(:now AS timestamptz) - interval '30 days'")
_DEPOSITS = text(_WINDOW_SUMS.format(expr="amount"))
_NET_LOSS = text(_WINDOW_SUMS.format(expr="CASE kind WHEN 'bet' THEN amount ELSE -amount END"))


async def guard_deposit(s: AsyncSession, state: State | None, player_id: uuid.UUID, currency: str,
                        amount: int, now: datetime) -> None:
    if (r := protection.blocked(state, now)) is not None:
        raise refuse(r)
    limits = protection.windowed(state, "deposit", currency)
    if not limits:
        return
    # the player's cash row is the per-player lock: two deposits cannot both pass the same limit
    await s.execute(text("INSERT INTO accounts (owner, kind, currency) VALUES (:o, 'cash', :c) "
                         "ON CONFLICT DO NOTHING"), {"o": str(player_id), "c": currency})
    await s.execute(text("SELECT 1 FROM accounts WHERE owner = :o AND kind = 'cash' AND currency = :c "
                         "AND shard = 0 FOR UPDATE"), {"o": str(player_id), "c": currency})
    row = (await s.execute(_DEPOSITS, {"p": player_id, "c": currency, "now": now, "kinds": ["deposit"]})).one()
    if (r := protection.check_deposit(limits, dict(row._mapping), amount)) is not None:
        raise refuse(r)


async def guard_bet(s: AsyncSession, state: State | None, player_id: uuid.UUID, currency: str,
                    amount: int, now: datetime) -> None:
    """Call with the player's accounts already locked, so concurrent bets see each other's stakes."""
    limits = protection.windowed(state, "loss", currency)
    if not limits:
        return
    row = (await s.execute(_NET_LOSS, {"p": player_id, "c": currency, "now": now,
                                       "kinds": ["bet", "win", "rollback"]})).one()
    if (r := protection.check_loss(limits, dict(row._mapping), amount)) is not None:
        raise refuse(r)


_PROTECTION = text("SELECT currency, limits, timeout_until, self_excluded_until FROM protection WHERE player_id = :p")


async def deposit_allowance(s: AsyncSession, player_id: uuid.UUID, currency: str, amount: int | None,
                            now: datetime) -> DepositAllowance:
    """What guard_deposit would say, asked ahead (before a payment session): the same protection
    state and the same window sums, read without locks (a deposit still checks for itself)."""
    row = (await s.execute(_PROTECTION, {"p": player_id})).one_or_none()
    state = None if row is None else protection_state(row.currency, row.limits, row.timeout_until,
                                                      row.self_excluded_until, now)
    if (r := protection.blocked(state, now)) is not None:
        return DepositAllowance(allowed=False, reason=r.reason, detail=r.detail)  # type: ignore[arg-type]
    limits = protection.windowed(state, "deposit", currency)
    if not limits:
        return DepositAllowance(allowed=True)
    sums = (await s.execute(_DEPOSITS, {"p": player_id, "c": currency, "now": now, "kinds": ["deposit"]})).one()
    deposited = dict(sums._mapping)
    remaining = protection.deposit_headroom(limits, deposited)
    if remaining is None:  # unreachable with limits; keeps the type honest
        return DepositAllowance(allowed=True)
    if amount is not None and (refusal := protection.check_deposit(limits, deposited, amount)) is not None:
        return DepositAllowance(allowed=False, reason="deposit-limit", remaining=remaining, detail=refusal.detail)
    if remaining == 0:
        return DepositAllowance(allowed=False, reason="deposit-limit", remaining=0,
                                detail="the deposit limit is used up")
    return DepositAllowance(allowed=True, remaining=remaining)
