"""Monthly statements: the deal maths (gameplane.affiliates.deals) over the month's per-player
figures, which the service keeps from the wallet's events (`player_days`, UTC days).

An open month is computed whenever it is asked for; closing a month computes every affiliate's
statement once more and stores it, final (a trigger refuses any change). The negative NGR an
affiliate carries into a month is the carry-out of its CLOSED statement of the month before
(months are closed in order, each after the one before, from the first one closed; an open
previous month carries nothing yet). Events of a closed month
that arrive after it was closed change nothing in it (they are in `player_days`, visible to the
back office, but a statement once closed is what was paid).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.affiliates import deals, metrics, store
from gameplane.affiliates.store import deal_of
from gameplane.contracts import affiliates as c
from gameplane.contracts.kpis import MoneyTotals
from gameplane.kit.outbox import publish


def next_month(m: date) -> date:
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def previous_month(m: date) -> date:
    return date(m.year - (m.month == 1), (m.month - 2) % 12 + 1, 1)


def month_label(m: date) -> str:
    return f"{m.year:04d}-{m.month:02d}"


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


_LINES = text(
    "SELECT a.player_ref, (a.qualified_at >= :t0 AND a.qualified_at < :t1) AS cpa, "
    "COALESCE(SUM(d.stakes), 0) AS stakes, COALESCE(SUM(d.wins), 0) AS wins, "
    "COALESCE(SUM(d.bonus_stakes), 0) AS bonus_stakes, COALESCE(SUM(d.bonus_wins), 0) AS bonus_wins, "
    "COALESCE(SUM(d.bonus_converted), 0) AS bonus_converted, COALESCE(SUM(d.payment_fees), 0) AS payment_fees, "
    "COALESCE(SUM(d.deposits), 0) AS deposits, COALESCE(SUM(d.withdrawals), 0) AS withdrawals, "
    "COUNT(d.day) AS days "
    "FROM attributions a LEFT JOIN player_days d ON d.player_id = a.player_id AND d.currency = :cur "
    "AND d.day >= :m0 AND d.day < :m1 "
    "WHERE a.affiliate_id = :a AND a.currency = :cur GROUP BY a.player_ref, a.qualified_at ORDER BY a.player_ref")


async def player_months(s: AsyncSession, affiliate_id: uuid.UUID, currency: str,
                        month: date) -> list[deals.PlayerMonth]:
    m1 = next_month(month)
    rows = (await s.execute(_LINES, {"a": affiliate_id, "cur": currency, "m0": month, "m1": m1,
                                     "t0": _midnight(month), "t1": _midnight(m1)})).mappings().all()
    return [deals.PlayerMonth(r["player_ref"], MoneyTotals(
        stakes=int(r["stakes"]), wins=int(r["wins"]), bonus_stakes=int(r["bonus_stakes"]),
        bonus_wins=int(r["bonus_wins"]), bonus_converted=int(r["bonus_converted"]),
        payment_fees=int(r["payment_fees"]), deposits=int(r["deposits"]), withdrawals=int(r["withdrawals"])),
        cpa=bool(r["cpa"])) for r in rows if r["days"] or r["cpa"]]


async def _closed(s: AsyncSession, affiliate_id: uuid.UUID, month: date) -> dict[str, Any] | None:
    row = (await s.execute(text("SELECT body FROM statements WHERE affiliate_id = :a AND month = :m"),
                           {"a": affiliate_id, "m": month})).first()
    return dict(row[0]) if row is not None else None


async def compute(s: AsyncSession, affiliate_id: uuid.UUID, month: date, tax_basis_points: int) -> deals.Statement:
    """The statement of an affiliate's month as its figures stand now."""
    row = (await s.execute(text("SELECT deal FROM affiliates WHERE affiliate_id = :a"),
                           {"a": affiliate_id})).one_or_none()
    if row is None:
        raise c.AFFILIATE_NOT_FOUND(f"no affiliate {affiliate_id}")
    deal = deal_of(row[0])
    before = await _closed(s, affiliate_id, previous_month(month))
    carried = int(before["carry_out"]) if before is not None else 0
    subs = []
    for child, bp in (await s.execute(text("SELECT affiliate_id, override_bp FROM affiliates WHERE parent_id = :a "
                                           "ORDER BY affiliate_id"), {"a": affiliate_id})).all():
        closed = await _closed(s, child, month)
        own = int(closed["own_commission"]) if closed is not None else \
            (await compute(s, child, month, tax_basis_points)).own_commission
        subs.append((own, int(bp)))
    players = await player_months(s, affiliate_id, deal.currency, month)
    return deals.statement(deal, players, carried_in=carried, tax_basis_points=tax_basis_points, subs=subs)


def as_view(affiliate_id: uuid.UUID, month: date, st: deals.Statement, deal: c.DealTerms, tax_basis_points: int,
            closed_at: datetime | None) -> c.StatementView:
    body = dataclasses.asdict(st)
    totals = body.pop("totals")
    body.pop("subs")
    lines = [c.StatementLineView(**ln) for ln in body.pop("lines")]
    return c.StatementView(affiliate_id=affiliate_id, month=month_label(month),
                           state="closed" if closed_at else "open", lines=lines, stakes=totals["stakes"],
                           wins=totals["wins"], closed_at=closed_at, deal=deal, tax_basis_points=tax_basis_points,
                           **body)


async def view(s: AsyncSession, affiliate_id: uuid.UUID, month: date, tax_basis_points: int) -> c.StatementView:
    closed = await _closed(s, affiliate_id, month)
    if closed is not None:
        return c.StatementView.model_validate(closed)
    deal = (await store.affiliate(s, affiliate_id)).deal
    return as_view(affiliate_id, month, await compute(s, affiliate_id, month, tax_basis_points), deal,
                   tax_basis_points, None)


async def close(s: AsyncSession, month: date, tax_basis_points: int, actor: str, now: datetime) -> int:
    """Close `month` for every affiliate: their statements become final. Returns how many."""
    if next_month(month) > now.date():
        raise c.MONTH_NOT_OVER(f"{month_label(month)} ends at {next_month(month).isoformat()} 00:00 UTC")
    await s.execute(text("LOCK TABLE closed_months IN EXCLUSIVE MODE"))
    if (await s.execute(text("SELECT 1 FROM closed_months WHERE month = :m"), {"m": month})).first() is not None:
        raise c.MONTH_CLOSED(f"{month_label(month)} was closed already")
    latest = (await s.execute(text("SELECT max(month) FROM closed_months"))).scalar_one()
    if latest is not None and previous_month(month) != latest:
        # a month's carry-over comes from the month before: closing out of order would lose it
        raise c.MONTHS_IN_ORDER(f"the last closed month is {month_label(latest)}; the next to close is "
                                f"{month_label(next_month(latest))}")
    ids = (await s.execute(text("SELECT affiliate_id FROM affiliates WHERE created_at < :end ORDER BY affiliate_id"),
                           {"end": _midnight(next_month(month))})).scalars().all()
    views = [as_view(a, month, await compute(s, a, month, tax_basis_points), (await store.affiliate(s, a)).deal,
                     tax_basis_points, now) for a in ids]
    for v in views:
        await s.execute(text("INSERT INTO statements (affiliate_id, month, currency, body, commission, carry_out, "
                             "closed_at) VALUES (:a, :m, :c, CAST(:b AS jsonb), :com, :co, :now)"),
                        {"a": v.affiliate_id, "m": month, "c": v.currency, "b": json.dumps(v.model_dump(mode="json")),
                         "com": v.commission, "co": v.carry_out, "now": now})
        await publish(s, c.StatementClosed(affiliate_id=v.affiliate_id, month=v.month, currency=v.currency,
                                           commission=v.commission, carry_out=v.carry_out, closed_at=now),
                      producer="affiliates")
        metrics.STATEMENTS_CLOSED.inc()
    await s.execute(text("INSERT INTO closed_months (month, closed_at, closed_by) VALUES (:m, :now, :by)"),
                    {"m": month, "now": now, "by": actor})
    return len(views)
