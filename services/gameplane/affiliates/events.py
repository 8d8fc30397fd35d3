"""What affiliates consumes (through gameplane.kit.consumer: idempotent, catching up from the
stream after downtime) and publishes.

Consumed: `players.registered` (attribution by the click id it carries), the wallet's money
events, into `player_days` per player, currency and UTC day of the event's `occurred_at` (the
ledger's own dating):
  bet_placed   stakes += amount, bonus_stakes += bonus
  rolled_back  stakes −= amount, bonus_stakes −= bonus (on the rollback's day, as the ledger books it)
  win_settled  wins += amount, bonus_wins += bonus
  bonus_converted  bonus_converted += cash (what became cash)
  fee_charged  payment_fees += amount
  deposit_credited deposits += amount (and the first deposit, for postbacks and CPA)
  withdrawal_posted withdrawals += amount
A free-spin win is not counted (gameplane.contracts.kpis: it reaches the figures when converted).
Published: `affiliates.player_attributed`, `affiliates.player_qualified`, `affiliates.statement_closed`.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.affiliates import attribution, metrics, postbacks, qualification
from gameplane.contracts.affiliates import PlayerAttributed
from gameplane.contracts.players import PlayerRegistered
from gameplane.contracts.wallet import (
    BetPlaced,
    BonusConverted,
    DepositCredited,
    FeeCharged,
    RolledBack,
    WinSettled,
    WithdrawalPosted,
)
from gameplane.kit.app import Runtime
from gameplane.kit.consumer import Consumers
from gameplane.kit.events import Envelope
from gameplane.kit.outbox import publish

FIGURES = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
           "withdrawals")

_ADD = text(
    "INSERT INTO player_days (player_id, currency, day, " + ", ".join(FIGURES) + ") "
    "SELECT * FROM unnest(CAST(:p AS uuid[]), CAST(:c AS text[]), CAST(:d AS date[]), "
    + ", ".join(f"CAST(:{f} AS bigint[])" for f in FIGURES) + ") "
    "ON CONFLICT (player_id, currency, day) DO UPDATE SET "
    + ", ".join(f"{f} = player_days.{f} + EXCLUDED.{f}" for f in FIGURES))

Key = tuple[uuid.UUID, str, date]
CONSUMED = (PlayerRegistered, BetPlaced, RolledBack, WinSettled, BonusConverted, FeeCharged, WithdrawalPosted,
            DepositCredited)


async def add_figures(s: AsyncSession, deltas: dict[Key, dict[str, int]]) -> None:
    if not deltas:
        return
    keys = sorted(deltas, key=lambda k: (str(k[0]), k[1], k[2]))  # one order: no deadlock between batches
    params: dict[str, Any] = {"p": [k[0] for k in keys], "c": [k[1] for k in keys], "d": [k[2] for k in keys]}
    for f in FIGURES:
        params[f] = [deltas[k].get(f, 0) for k in keys]
    await s.execute(_ADD, params)


def _day(at: datetime) -> date:
    """The UTC day of an instant (a naive one is taken as UTC)."""
    return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


def build_consumers(holder: dict[str, Runtime]) -> Consumers:
    consumers = Consumers()

    async def progress(s: AsyncSession, players: set[uuid.UUID], *, first_deposit: bool = True) -> None:
        await qualification.lock_players(s, players)
        if await qualification.advance(s, players, first_deposit=first_deposit):
            postbacks.wake(holder["rt"])

    def batch(figure_of: Any, *, stakes: bool = False) -> Any:
        """A batch handler adding each event's figures; after stakes, the CPA qualification is looked
        at again (nothing else a batch adds can qualify a player or make a postback due)."""
        async def handle(s: AsyncSession, items: list[tuple[Any, Envelope]]) -> None:
            deltas: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for e, _env in items:
                for name, value in figure_of(e).items():
                    deltas[(e.player_id, e.currency, _day(e.occurred_at))][name] += value
            await add_figures(s, deltas)
            if stakes:
                await progress(s, {e.player_id for e, _ in items}, first_deposit=False)
        return handle

    consumers.on_batch(BetPlaced)(batch(lambda e: {"stakes": e.amount, "bonus_stakes": e.bonus}, stakes=True))
    consumers.on_batch(RolledBack)(batch(lambda e: {"stakes": -e.amount, "bonus_stakes": -e.bonus}))
    consumers.on_batch(WinSettled)(batch(lambda e: {"wins": e.amount, "bonus_wins": e.bonus}))
    consumers.on_batch(BonusConverted)(batch(lambda e: {"bonus_converted": e.cash}))
    consumers.on_batch(FeeCharged)(batch(lambda e: {"payment_fees": e.amount}))
    consumers.on_batch(WithdrawalPosted)(batch(lambda e: {"withdrawals": e.amount}))

    @consumers.on(DepositCredited)
    async def on_deposit(s: AsyncSession, e: DepositCredited, env: Envelope) -> None:
        await add_figures(s, {(e.player_id, e.currency, _day(e.occurred_at)): {"deposits": e.amount}})
        if e.first_deposit:
            await s.execute(text("INSERT INTO first_deposits (player_id, amount, currency, deposited_at) "
                                 "VALUES (:p, :a, :c, :at) ON CONFLICT (player_id) DO NOTHING"),
                            {"p": e.player_id, "a": e.amount, "c": e.currency, "at": e.occurred_at})
        await progress(s, {e.player_id})

    @consumers.on(PlayerRegistered)
    async def on_registered(s: AsyncSession, e: PlayerRegistered, env: Envelope) -> None:
        await qualification.lock_players(s, {e.player_id})
        click = None
        if e.affiliate_click_id:
            click = (await s.execute(text(
                "SELECT c.click_id, c.link_id, c.affiliate_id, c.sub_ids, c.flag, c.clicked_at, a.active "
                "FROM clicks c JOIN affiliates a ON a.affiliate_id = c.affiliate_id WHERE c.click_id = :c"),
                {"c": e.affiliate_click_id})).mappings().one_or_none()
        reason = attribution.why_not(e.affiliate_click_id, click, e.registered_at)
        ok = reason is None and click is not None
        ref = attribution.new_player_ref()
        row = (await s.execute(text(
            "INSERT INTO attributions (player_id, player_ref, affiliate_id, click_id, link_id, sub_ids, reason, "
            "country, currency, registered_at) VALUES (:p, :ref, :a, :c, :l, CAST(:s AS jsonb), :why, :country, "
            ":cur, :at) ON CONFLICT (player_id) DO NOTHING RETURNING player_id"),
            {"p": e.player_id, "ref": ref, "a": click["affiliate_id"] if ok else None,
             "c": click["click_id"] if ok else None, "l": click["link_id"] if ok else None,
             "s": json.dumps(click["sub_ids"] if ok else []), "why": reason, "country": e.country, "cur": e.currency,
             "at": e.registered_at})).first()
        if row is None:
            return  # the same player registered twice: the first registration holds
        metrics.ATTRIBUTIONS.labels(reason or "attributed").inc()
        if not ok:
            return
        assert click is not None
        await publish(s, PlayerAttributed(player_id=e.player_id, affiliate_id=click["affiliate_id"],
                                          click_id=click["click_id"], link_id=click["link_id"],
                                          sub_ids=list(click["sub_ids"]), country=e.country, currency=e.currency,
                                          attributed_at=e.registered_at), producer="affiliates")
        queued = await postbacks.enqueue(s, postbacks.body_of(
            "registration", click["affiliate_id"], {**click, "player_ref": ref}, e.registered_at), e.player_id)
        if await qualification.advance(s, {e.player_id}) or queued:
            postbacks.wake(holder["rt"])

    return consumers
