"""The money figures of each UTC day and currency, read straight from the wallet's ledger: what a
test compares the analytics KPIs and the affiliate statements with.

Deliberately independent of `gameplane.contracts.kpis` and of every consumer of wallet events: it
sums the wallet's own entries by the account they moved and the kind of the transaction, dated by
the transaction's `created_at` in UTC (a rollback counts on the day it was booked, negatively, not
on its bet's day). The fields carry the names of `kpis.MoneyTotals`' inputs so a caller can set
the two side by side; what they mean in ledger terms:

| figure | entries summed |
|---|---|
| stakes | the house's entries of bets (+) and rollbacks (−): stakes net of rollbacks |
| wins | the house's entries of wins, negated (a free-spin win is paid by the bonus liability: not here) |
| bonus_stakes | the players' bonus entries of bets and rollbacks, negated: the bonus part of the stakes |
| bonus_wins | the players' bonus entries of wins: the bonus part of the wins |
| bonus_converted | the `bonus_cost` account's entries, negated: bonus money that became cash |
| payment_fees | the `payment_fees` account's entries, negated (wallet migration 0010) |
| deposits | `psp_clearing`'s entries of deposits, negated (the whole amount, a receivable's settlement too) |
| withdrawals | `psp_clearing`'s entries of withdrawal posts: the money paid out |

Holds, voids, chargebacks, adjustments, grants and forfeits are in none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from gameplane.kit.db import libpq_dsn


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    stakes: int = 0
    wins: int = 0
    bonus_stakes: int = 0
    bonus_wins: int = 0
    bonus_converted: int = 0
    payment_fees: int = 0
    deposits: int = 0
    withdrawals: int = 0


def _sum(sign: str, account: str, kinds: tuple[str, ...] = ()) -> str:
    where = f"({account})" + (f" AND t.kind IN ({', '.join(repr(k) for k in kinds)})" if kinds else "")
    return f"coalesce({sign}sum(e.amount) FILTER (WHERE {where}), 0)::bigint"


_HOUSE = "a.owner = 'platform' AND a.kind = 'house'"
_BONUS = "a.owner <> 'platform' AND a.kind = 'bonus'"
_CLEARING = "a.owner = 'platform' AND a.kind = 'psp_clearing'"
_FIELDS = {
    "stakes": _sum("", _HOUSE, ("bet", "rollback")),
    "wins": _sum("-", _HOUSE, ("win",)),
    "bonus_stakes": _sum("-", _BONUS, ("bet", "rollback")),
    "bonus_wins": _sum("", _BONUS, ("win",)),
    "bonus_converted": _sum("-", "a.owner = 'platform' AND a.kind = 'bonus_cost'"),
    "payment_fees": _sum("-", "a.owner = 'platform' AND a.kind = 'payment_fees'"),
    "deposits": _sum("-", _CLEARING, ("deposit",)),
    "withdrawals": _sum("", _CLEARING, ("withdrawal_post",)),
}
QUERY = (
    "SELECT (t.created_at AT TIME ZONE 'UTC')::date AS day, e.currency, "
    + ", ".join(f"{sql} AS {name}" for name, sql in _FIELDS.items())
    + " FROM entries e JOIN accounts a ON a.id = e.account_id JOIN transactions t ON t.id = e.transaction_id"
    " WHERE t.created_at >= $1 AND t.created_at < $2 AND ($3::uuid[] IS NULL OR t.player_id = ANY($3::uuid[]))"
    " GROUP BY 1, 2 ORDER BY 1, 2")


async def ledger_figures(dsn: str, day_from: date, day_to: date, *,
                         players: Iterable[uuid.UUID] | None = None) -> dict[tuple[date, str], LedgerFigures]:
    """Per (UTC day, currency) from `day_from` to `day_to`, both included, the figures of the
    wallet database at `dsn` (an SQLAlchemy or libpq URL). A day and currency where every figure
    is zero is absent (read it as LedgerFigures()). `players`: only the transactions of these
    players (e.g. an affiliate's; a fee counts for the player of its payment)."""
    if day_to < day_from:
        raise ValueError(f"day_to {day_to} is before day_from {day_from}")
    since = datetime.combine(day_from, time(), tzinfo=UTC)
    until = datetime.combine(day_to + timedelta(days=1), time(), tzinfo=UTC)
    conn = await asyncpg.connect(libpq_dsn(dsn))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(QUERY, since, until, None if players is None else list(players))
    finally:
        await conn.close()
    out: dict[tuple[date, str], LedgerFigures] = {}
    for r in rows:
        figures = LedgerFigures(**{name: int(r[name]) for name in _FIELDS})
        if figures != LedgerFigures():
            out[(r["day"], r["currency"])] = figures
    return out
