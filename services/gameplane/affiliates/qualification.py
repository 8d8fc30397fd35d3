"""What a referred player's money does for their affiliate: the first-deposit postback and the
CPA qualification (once per player; see gameplane.affiliates.deals for the rule).

`advance` is called after anything that may move a player forward (their attribution, a deposit,
play) with the player's lock held, so that two consumers handling one player at once (the
deposit and the registration, say) each see what the other committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.affiliates import deals, metrics, postbacks
from gameplane.affiliates.store import deal_of
from gameplane.contracts.affiliates import PlayerQualified
from gameplane.kit.outbox import publish


async def lock_players(s: AsyncSession, players: Iterable[uuid.UUID]) -> None:
    """Take the players' locks, sorted, so that no two transactions deadlock."""
    await s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(p, 13)) "
                         "FROM unnest(CAST(:ps AS text[])) AS p ORDER BY p"), {"ps": sorted({str(p) for p in players})})


_REFERRED = text(
    "SELECT a.player_id, a.player_ref, a.affiliate_id, a.click_id, a.sub_ids, a.currency, a.registered_at, "
    "a.qualified_at, f.amount AS first_deposit, f.currency AS fd_currency, f.deposited_at, af.deal "
    "FROM attributions a JOIN affiliates af ON af.affiliate_id = a.affiliate_id "
    "LEFT JOIN first_deposits f ON f.player_id = a.player_id "
    "WHERE a.player_id = ANY(CAST(:ps AS uuid[])) AND a.affiliate_id IS NOT NULL")


async def advance(s: AsyncSession, players: Iterable[uuid.UUID], *, first_deposit: bool = True) -> bool:
    """Queue what is due for these players; True when a postback was queued (wake the sender).
    `first_deposit=False` (after bets: they cannot make a first-deposit postback due) skips it."""
    queued = False
    rows = (await s.execute(_REFERRED, {"ps": sorted({str(p) for p in players})})).mappings().all()
    for r in rows:
        if first_deposit and r["first_deposit"] is not None:
            queued |= await postbacks.enqueue(s, postbacks.body_of(
                "first_deposit", r["affiliate_id"], r, r["deposited_at"], int(r["first_deposit"]), r["fd_currency"]),
                r["player_id"])
        if r["qualified_at"] is not None:
            continue
        deal = deal_of(r["deal"])
        if deal.cpa_amount == 0 or r["currency"] != deal.currency:
            continue
        first = int(r["first_deposit"]) if r["first_deposit"] is not None and r["fd_currency"] == deal.currency \
            else None
        day0 = r["registered_at"].date()
        days = (await s.execute(text(
            "SELECT day, SUM(stakes) OVER (ORDER BY day) AS reached FROM player_days WHERE player_id = :p "
            "AND currency = :c AND day >= :d0 AND day < :d1 ORDER BY day"),
            {"p": r["player_id"], "c": deal.currency, "d0": day0,
             "d1": day0 + timedelta(days=deal.cpa_stakes_days)})).all()
        staked = int(days[-1].reached) if days else 0
        if not deals.qualifies(deal, first, staked):
            continue
        # dated by the ledger, not by when the events happened to arrive: the later of the first
        # deposit and the start of the UTC day the stakes reached the minimum
        reached = next((d.day for d in days if int(d.reached) >= deal.cpa_min_stakes), day0) \
            if deal.cpa_min_stakes else day0
        when = max(r["deposited_at"], datetime(reached.year, reached.month, reached.day, tzinfo=UTC))
        await s.execute(text("UPDATE attributions SET qualified_at = :at WHERE player_id = :p"),
                        {"at": when, "p": r["player_id"]})
        metrics.QUALIFIED.inc()
        await publish(s, PlayerQualified(player_id=r["player_id"], affiliate_id=r["affiliate_id"],
                                         cpa_amount=deal.cpa_amount, currency=deal.currency, qualified_at=when),
                      producer="affiliates")
        queued |= await postbacks.enqueue(s, postbacks.body_of(
            "qualification", r["affiliate_id"], r, when, deal.cpa_amount, deal.currency), r["player_id"])
    return queued
