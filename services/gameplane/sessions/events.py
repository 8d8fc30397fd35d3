"""What sessions consumes (players protection events) and publishes (sessions.*).

Published: `sessions.started`, `sessions.ended`, `sessions.reality_check` (gameplane.contracts.sessions).
Consumed: `players.protection_changed` (newest revision wins), `players.self_excluded` and
`players.timed_out` (both also end the player's open sessions at once), and the wallet's
`bet_placed` / `win_settled` / `rolled_back`, which add up the net position reality checks show.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import ProtectionChanged, SelfExcluded, TimedOut
from gameplane.contracts.sessions import EndReason, SessionEnded
from gameplane.contracts.wallet import BetPlaced, RolledBack, WinSettled
from gameplane.kit.consumer import Consumers
from gameplane.kit.db import utcnow
from gameplane.kit.events import Envelope
from gameplane.kit.outbox import publish
from gameplane.sessions import logic
from gameplane.sessions.models import GameSession, PlayerProtection

PRODUCER = "sessions"
consumers = Consumers()


async def end_session(s: AsyncSession, row: GameSession, reason: EndReason, at: datetime) -> None:
    """End one active session (caller holds the row lock) and publish `sessions.ended`."""
    row.status = "ended"
    row.ended_at = max(at, row.started_at)
    row.end_reason = reason
    row.next_reality_check_at = None
    await publish(s, SessionEnded(
        session_id=row.id, player_id=row.player_id, game_id=row.game_id, reason=reason,
        started_at=row.started_at, ended_at=row.ended_at,
        duration_seconds=int((row.ended_at - row.started_at).total_seconds())), producer=PRODUCER)


async def end_player_sessions(s: AsyncSession, player_id: uuid.UUID, reason: EndReason, at: datetime) -> int:
    rows = (await s.scalars(select(GameSession).where(
        GameSession.player_id == player_id, GameSession.status == "active").with_for_update())).all()
    for row in rows:
        await end_session(s, row, reason, at)
    return len(rows)


async def _ensure_row(s: AsyncSession, player_id: uuid.UUID) -> PlayerProtection:
    await s.execute(insert(PlayerProtection).values(player_id=player_id, revision=0)
                    .on_conflict_do_nothing(index_elements=["player_id"]))
    row = await s.scalar(select(PlayerProtection).where(PlayerProtection.player_id == player_id)
                         .with_for_update())
    assert row is not None
    return row


@consumers.on(ProtectionChanged)
async def on_protection_changed(s: AsyncSession, event: ProtectionChanged, env: Envelope) -> None:
    row = await _ensure_row(s, event.player_id)
    if event.revision <= row.revision:
        return  # an older snapshot delivered late
    row.revision = event.revision
    row.currency = event.currency
    row.timeout_until = event.timeout_until
    row.self_excluded_until = event.self_excluded_until
    row.reality_check_minutes = event.reality_check_minutes
    row.session_limit_minutes = logic.session_limit(
        [limit.model_dump() for limit in event.limits], utcnow())
    row.updated_at = utcnow()


@consumers.on(SelfExcluded)
async def on_self_excluded(s: AsyncSession, event: SelfExcluded, env: Envelope) -> None:
    row = await _ensure_row(s, event.player_id)
    if row.self_excluded_until is None or row.self_excluded_until < event.until:
        row.self_excluded_until = event.until
    await end_player_sessions(s, event.player_id, "self_excluded", env.occurred_at)


@consumers.on(TimedOut)
async def on_timed_out(s: AsyncSession, event: TimedOut, env: Envelope) -> None:
    row = await _ensure_row(s, event.player_id)
    if row.timeout_until is None or row.timeout_until < event.until:
        row.timeout_until = event.until
    await end_player_sessions(s, event.player_id, "timed_out", env.occurred_at)


# Wallet events name the player and game, not the session: the money goes to the player's latest
# session of that game (open ones first). A player rarely has two sessions of one game at once.
# A batch of events is summed per (player, game, currency) first: one session, one row in `d`.
_ATTRIBUTE = text(
    "UPDATE game_sessions g SET staked = g.staked + d.staked, won = g.won + d.won FROM ("
    " SELECT d.staked, d.won, (SELECT id FROM game_sessions WHERE player_id = d.p AND game_id = d.g"
    "  AND currency = d.c ORDER BY status = 'active' DESC, started_at DESC LIMIT 1) AS session_id"
    " FROM unnest(CAST(:p AS uuid[]), CAST(:g AS text[]), CAST(:c AS text[]), CAST(:staked AS bigint[]),"
    "  CAST(:won AS bigint[])) AS d(p, g, c, staked, won)) d "
    "WHERE g.id = d.session_id")


async def _attribute(s: AsyncSession, moves: list[tuple[uuid.UUID, str, str, int, int]]) -> None:
    """`moves`: (player, game, currency, staked, won) deltas, in any number per session."""
    sums: dict[tuple[uuid.UUID, str, str], list[int]] = {}
    for p, g, c, staked, won in moves:
        acc = sums.setdefault((p, g, c), [0, 0])
        acc[0] += staked
        acc[1] += won
    if not sums:
        return
    keys = list(sums)
    await s.execute(_ATTRIBUTE, {"p": [k[0] for k in keys], "g": [k[1] for k in keys], "c": [k[2] for k in keys],
                                 "staked": [sums[k][0] for k in keys], "won": [sums[k][1] for k in keys]})


@consumers.on_batch(BetPlaced)
async def on_bets(s: AsyncSession, events: list[tuple[BetPlaced, Envelope]]) -> None:
    await _attribute(s, [(e.player_id, e.game_id, e.currency, e.amount, 0) for e, _ in events])


@consumers.on_batch(WinSettled)
async def on_wins(s: AsyncSession, events: list[tuple[WinSettled, Envelope]]) -> None:
    await _attribute(s, [(e.player_id, e.game_id, e.currency, 0, e.amount) for e, _ in events])


@consumers.on_batch(RolledBack)
async def on_rollbacks(s: AsyncSession, events: list[tuple[RolledBack, Envelope]]) -> None:
    await _attribute(s, [(e.player_id, e.game_id, e.currency, -e.amount, 0) for e, _ in events
                         if e.game_id is not None and e.amount])
