"""What risk consumes (it keeps the feature store from them) and publishes.

Published (gameplane.contracts.risk): `risk.decided`, `risk.case_opened` (decisions.py),
`risk.case_decided` (cases.py).
Consumed: `players.registered`, `players.logged_in` (logins, shared addresses and devices),
`payments.*` (deposits, failed deposits, withdrawals paid and cancelled, chargebacks, deposit
methods, chases), `wallet.bet_placed` / `wallet.win_settled` (play since the last deposit,
late-night play). After play and payment events the players' harm scores are computed again:
bets are scored from events, never waited on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.payments import (
    Chargeback,
    DepositFailed,
    DepositSucceeded,
    WithdrawalCancelled,
    WithdrawalPaid,
)
from gameplane.contracts.players import LoggedIn, PlayerRegistered
from gameplane.contracts.wallet import BetPlaced, WinSettled
from gameplane.kit.consumer import Consumers
from gameplane.kit.db import utcnow
from gameplane.kit.events import Envelope
from gameplane.risk import engine, metrics, store
from gameplane.risk.features import Snapshot, is_chase, is_night
from gameplane.risk.rulesets import RuleCache


async def rescore(s: AsyncSession, cache: RuleCache, players: Iterable[uuid.UUID]) -> None:
    """Compute the harm score of these players again from their features now."""
    ids = sorted(set(players), key=str)
    if not ids:
        return
    rule_set = await cache.newest(s)
    now = utcnow()
    scores = []
    for snap in await store.snapshots(s, ids, now):
        verdict = engine.harm(rule_set, snap)
        for fired in verdict.fired:
            metrics.RULE_FIRES.labels(fired.rule_id, "harm").inc()
        scores.append((snap.player_id, verdict.score, verdict.rule_ids))
    await store.set_harm(s, scores, now)


def build_consumers(cache: RuleCache) -> Consumers:
    consumers = Consumers()

    @consumers.on(PlayerRegistered)
    async def on_registered(s: AsyncSession, event: PlayerRegistered, env: Envelope) -> None:
        await store.ensure_player(s, event.player_id)
        await s.execute(text("UPDATE player_features SET currency = :c, registered_at = :at WHERE player_id = :p"),
                        {"c": event.currency, "at": event.registered_at, "p": event.player_id})

    @consumers.on(LoggedIn)
    async def on_logged_in(s: AsyncSession, event: LoggedIn, env: Envelope) -> None:
        await store.add_to_buckets(s, [(event.player_id, "logins", event.at, 0)])
        await store.ensure_player(s, event.player_id)
        for kind, value in (("ip", event.ip), ("device", event.device_id)):
            if value:
                await store.link(s, event.player_id, kind, value, event.at)
        await s.execute(text("UPDATE player_features SET last_ip = COALESCE(:ip, last_ip), "
                             "last_device = COALESCE(:dev, last_device) WHERE player_id = :p"),
                        {"ip": event.ip, "dev": event.device_id, "p": event.player_id})

    @consumers.on(DepositSucceeded)
    async def on_deposit(s: AsyncSession, event: DepositSucceeded, env: Envelope) -> None:
        row = await store.player_row(s, event.player_id)
        moves = [(event.player_id, "deposits", event.at, event.amount)]
        chasing = (await cache.newest(s)).chasing()
        if chasing is not None:
            before = Snapshot(player_id=event.player_id, now=event.at,
                              last_deposit_amount=row["last_deposit_amount"],
                              last_deposit_at=row["last_deposit_at"],
                              wagered_since_deposit=row["wagered_since_deposit"],
                              won_since_deposit=row["won_since_deposit"], last_bet_at=row["last_bet_at"])
            if is_chase(before, event.at, chasing.loss_pct, timedelta(minutes=chasing.within_minutes)):
                moves.append((event.player_id, "chase_deposits", event.at, event.amount))
        await store.add_to_buckets(s, moves)
        if event.method_fingerprint:
            await store.record_method(s, event.player_id, event.method_fingerprint, event.at)
        if row["last_deposit_at"] is None or event.at >= row["last_deposit_at"]:
            await s.execute(text(
                "UPDATE player_features SET last_deposit_amount = :a, last_deposit_at = :at, "
                "wagered_since_deposit = 0, won_since_deposit = 0 WHERE player_id = :p"),
                {"a": event.amount, "at": event.at, "p": event.player_id})
        await rescore(s, cache, [event.player_id])

    async def count(s: AsyncSession, feature: str, player_id: uuid.UUID, at: datetime, amount: int,
                    harm: bool) -> None:
        await store.add_to_buckets(s, [(player_id, feature, at, amount)])
        if harm:
            await rescore(s, cache, [player_id])

    @consumers.on(DepositFailed)
    async def on_deposit_failed(s: AsyncSession, event: DepositFailed, env: Envelope) -> None:
        await count(s, "failed_deposits", event.player_id, event.at, event.amount, harm=True)

    @consumers.on(WithdrawalPaid)
    async def on_withdrawal_paid(s: AsyncSession, event: WithdrawalPaid, env: Envelope) -> None:
        await count(s, "withdrawals", event.player_id, event.at, event.amount, harm=False)

    @consumers.on(WithdrawalCancelled)
    async def on_withdrawal_cancelled(s: AsyncSession, event: WithdrawalCancelled, env: Envelope) -> None:
        await count(s, "cancelled_withdrawals", event.player_id, event.at, event.amount, harm=True)
        await store.withdraw_case(s, "withdrawal", event.reference, event.player_id, event.at)

    @consumers.on(Chargeback)
    async def on_chargeback(s: AsyncSession, event: Chargeback, env: Envelope) -> None:
        await count(s, "chargebacks", event.player_id, event.at, event.amount, harm=False)

    @consumers.on_batch(BetPlaced)
    async def on_bets(s: AsyncSession, events: list[tuple[BetPlaced, Envelope]]) -> None:
        moves = [(e.player_id, "bets", e.occurred_at, e.amount) for e, _ in events]
        moves += [(e.player_id, "night_bets", e.occurred_at, e.amount) for e, _ in events if is_night(e.occurred_at)]
        await store.add_to_buckets(s, moves)
        await store.add_play(s, [(e.player_id, e.amount, 0, e.occurred_at) for e, _ in events])
        await rescore(s, cache, (e.player_id for e, _ in events))

    @consumers.on_batch(WinSettled)
    async def on_wins(s: AsyncSession, events: list[tuple[WinSettled, Envelope]]) -> None:
        await store.add_to_buckets(s, [(e.player_id, "wins", e.occurred_at, e.amount) for e, _ in events])
        await store.add_play(s, [(e.player_id, 0, e.amount, None) for e, _ in events])
        await rescore(s, cache, (e.player_id for e, _ in events))

    return consumers
