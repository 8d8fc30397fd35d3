"""The background worker: makes the wallet and games calls grants owe (grant, convert, forfeit),
expires grants, pays cashback at the end of its period, refreshes the gauges.

Each owed call is made while the grant's row is locked (FOR UPDATE SKIP LOCKED), so a grant's
calls never overlap, and with an idempotency key derived from the grant, so a retry after a lost
answer moves nothing twice. A failed call leaves `pending` set: the next round tries again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from gameplane.bonus import clients, grants, metrics
from gameplane.bonus.rules import protection_refusal
from gameplane.contracts import bonus as c
from gameplane.kit.app import Runtime
from gameplane.kit.db import utcnow
from gameplane.kit.events import STREAM_NAME
from gameplane.kit.http import DependencyError
from gameplane.kit.outbox import publish

log = logging.getLogger("gameplane.bonus.worker")


def now_of(rt: Runtime) -> datetime:
    clock = rt.state.get("clock")
    return clock() if clock is not None else utcnow()


def wake(rt: Runtime) -> None:
    event: asyncio.Event | None = rt.state.get("wake")
    if event is not None:
        event.set()


async def settle(rt: Runtime, grant_id: uuid.UUID, *, wait: bool = False) -> dict[str, Any] | None:
    """Make the calls this grant owes, as far as they go. Returns its row after (None: unknown, or
    locked by another worker). `wait`: a request that just moved the grant waits for a worker
    already on it, so that its answer shows where the calls got to."""
    for _ in range(3):  # grant, then (0x requirement) convert
        async with rt.database.transaction() as s:
            row = await grants.lock(s, grant_id, skip_locked=not wait)
            if row is None or row["pending"] is None:
                return row
            try:
                await _call(rt, s, row)
            except (DependencyError, clients.Refused) as exc:
                log.warning("grant %s: %s call failed: %s", grant_id, row["pending"], exc)
                return row
    async with rt.database.session() as s:
        return await grants.get(s, grant_id)


async def _call(rt: Runtime, s: Any, row: dict[str, Any]) -> None:
    now = now_of(rt)
    gid = row["grant_id"]
    if row["pending"] == "grant":
        await clients.wallet_grant(rt, gid, row["player_id"], row["currency"], int(row["amount"]), row["max_stake"],
                                   int(row["priority"]))
        await s.execute(text("UPDATE grants SET wallet_granted = true WHERE grant_id = :g"), {"g": gid})
        if row["kind"] == "free_spins":
            await clients.award_free_spins(rt, gid, row["player_id"], row["currency"], row["game_id"],
                                           int(row["spins"]), int(row["spin_stake"]), row["expires_at"])
        await s.execute(text("UPDATE grants SET state = 'active', pending = NULL WHERE grant_id = :g"), {"g": gid})
        row = {**row, "state": "active", "pending": None, "wallet_granted": True}
        await grants.progress(s, row, now)  # a 0x requirement completes at once
    elif row["pending"] == "convert":
        done = await clients.wallet_settle(rt, gid, convert=True, reason="completed", cap=row["cashout_cap"])
        cash = done.cash if done is not None else 0
        await s.execute(text("UPDATE grants SET state = 'converted', converted = :cash, closed_at = :now, "
                             "pending = NULL WHERE grant_id = :g"), {"cash": cash, "now": now, "g": gid})
        await publish(s, c.Converted(grant_id=gid, player_id=row["player_id"], offer_id=row["offer_id"],
                                     currency=row["currency"], at=now, cash=cash), producer=grants.PRODUCER)
        metrics.CONVERSIONS.labels(row["currency"]).inc()
        metrics.CONVERTED.labels(row["currency"]).inc(cash)
    elif row["pending"] == "forfeit":
        if not row["wallet_granted"]:
            # The grant call may have reached the wallet with its answer lost: make sure it exists
            # (same key: the stored answer if it does), so that the forfeit below closes it for good.
            await clients.wallet_grant(rt, gid, row["player_id"], row["currency"], int(row["amount"]),
                                       row["max_stake"], int(row["priority"]))
        reason = {"expired": "expired", "cancelled": "cancelled"}.get(row["state"], "forfeited")
        if row["reason"] == "withdrawal":
            reason = "withdrawal"
        await clients.wallet_settle(rt, gid, convert=False, reason=reason)
        await s.execute(text("UPDATE grants SET pending = NULL, wallet_granted = true WHERE grant_id = :g"),
                        {"g": gid})


async def expire(rt: Runtime) -> int:
    now = now_of(rt)
    async with rt.database.transaction() as s:
        due = (await s.execute(text(
            "SELECT grant_id FROM grants WHERE state IN ('issued', 'active', 'wagering') AND expires_at <= :now "
            "ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED"), {"now": now})).scalars().all()
        for gid in due:
            row = await grants.lock(s, gid)
            assert row is not None
            await grants.close(s, row, "expired", "expired", now)
    return len(due)


async def pay_cashback(rt: Runtime) -> int:
    """Cashback enrolments whose period ended: a grant of pct of the net losses (stakes - wins)
    over the period, at most the offer's cap; nothing when the player won."""
    now = now_of(rt)
    due_before = now - timedelta(seconds=rt.settings.cashback_grace_seconds)  # type: ignore[attr-defined]
    paid = 0
    async with rt.database.transaction() as s:
        due = (await s.execute(text(
            "SELECT o.player_id, o.offer_id, o.opted_in_at, o.period_ends_at, o.currency, "
            "COALESCE((SELECT sum(staked - won) FROM play_days d WHERE d.player_id = o.player_id "
            "AND d.currency = o.currency AND d.day >= CAST(o.opted_in_at AS date) "
            "AND d.day <= CAST(o.period_ends_at AS date)), 0) AS net_loss "
            "FROM opt_ins o WHERE NOT o.settled AND o.kind = 'cashback' AND o.period_ends_at <= :due "
            "ORDER BY o.period_ends_at LIMIT 200 FOR UPDATE SKIP LOCKED"), {"due": due_before})).all()
        for d in due:
            await s.execute(text("UPDATE opt_ins SET settled = true WHERE player_id = :p AND offer_id = :o"),
                            {"p": d.player_id, "o": d.offer_id})
            row = (await s.execute(text("SELECT state, live_version FROM offers WHERE offer_id = :o"),
                                   {"o": d.offer_id})).one()
            if row.live_version is None:
                continue
            terms = await grants.terms_of(s, d.offer_id, int(row.live_version))
            amount = int(d.net_loss) * int(terms.cashback_pct or 0) // 100
            if terms.max_bonus is not None:
                amount = min(amount, terms.max_bonus)
            if amount <= 0:
                continue
            facts = await grants.facts(s, d.player_id)
            if protection_refusal(facts, now) is not None:
                continue
            if await grants.create(s, player_id=d.player_id, offer_id=d.offer_id, version=int(row.live_version),
                                   terms=terms, amount=amount, deposit=0, source="cashback", now=now) is not None:
                paid += 1
    return paid


async def settle_owed(rt: Runtime, limit: int = 200) -> int:
    async with rt.database.session() as s:
        owed = (await s.execute(text("SELECT grant_id FROM grants WHERE pending IS NOT NULL ORDER BY created_at "
                                     "LIMIT :n"), {"n": limit})).scalars().all()
    for gid in owed:
        await settle(rt, gid)
    return len(owed)


async def refresh_gauges(rt: Runtime) -> None:
    now = now_of(rt)
    async with rt.database.session() as s:
        rows = (await s.execute(text(
            "SELECT currency, count(*), COALESCE(sum(amount), 0) FROM grants "
            "WHERE state IN ('issued', 'active', 'wagering', 'completed') GROUP BY currency"))).all()
        owed, oldest = (await s.execute(text(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM :now - min(created_at)), 0) FROM grants "
            "WHERE pending IS NOT NULL"), {"now": now})).one()
    metrics.LIABILITY.clear()
    metrics.OPEN_GRANTS.clear()
    for currency, n, amount in rows:
        metrics.LIABILITY.labels(currency).set(int(amount))
        metrics.OPEN_GRANTS.labels(currency).set(int(n))
    metrics.WALLET_OWED.set(int(owed))
    metrics.OLDEST_OWED.set(max(float(oldest), 0.0))
    await _consumer_lag(rt)


async def _consumer_lag(rt: Runtime) -> None:
    """JetStream's count of what bonus's wagering consumers have still to process."""
    if rt.bus is None or not rt.bus.connected:
        return
    for event in ("wallet.bet_placed", "wallet.win_settled", "wallet.rolled_back"):
        durable = f"{rt.name}-{event.replace('.', '_')}"
        try:
            info = await rt.bus.js.consumer_info(STREAM_NAME, durable)
        except Exception:  # not created yet, or NATS away for a moment
            continue
        metrics.CONSUMER_PENDING.labels(durable).set(int(info.num_pending or 0) + int(info.num_ack_pending or 0))


async def prune(rt: Runtime, retention_days: int) -> None:
    async with rt.database.transaction() as s:
        # an open round this old is abandoned: its bets never count (docs/architecture.md, bonus)
        await s.execute(text("DELETE FROM round_bets WHERE seen_at < now() - make_interval(days => :d)"),
                        {"d": retention_days})
        await s.execute(text("DELETE FROM closed_rounds WHERE closed_at < now() - make_interval(days => :d)"),
                        {"d": retention_days})


async def sweep_once(rt: Runtime) -> None:
    await expire(rt)
    await pay_cashback(rt)
    await settle_owed(rt)
    await refresh_gauges(rt)


async def run(rt: Runtime, interval: float, retention_days: int) -> None:
    wake_event: asyncio.Event = rt.state.setdefault("wake", asyncio.Event())
    rounds = 0
    while True:
        try:
            await sweep_once(rt)
            rounds += 1
            if rounds % 100 == 1:
                await prune(rt, retention_days)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away for a moment: try again next round
            log.warning("bonus sweep failed: %s", exc)
        wake_event.clear()
        try:
            await asyncio.wait_for(wake_event.wait(), timeout=interval)
        except TimeoutError:
            pass
