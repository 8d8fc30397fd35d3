"""Responsible-gaming workflows against the database: limits, time-outs, self-exclusion, reality
checks, eligibility, and the sweep that applies pending limit changes whose time has come.

Every change locks the player's `protections` row, so revisions are strictly increasing and each
published `players.protection_changed` snapshot is the state right after that change.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import Eligibility, LimitView, ProtectionView, SelfExcluded, TimedOut
from gameplane.kit.app import Runtime
from gameplane.players import limits as rules
from gameplane.players import protection as prot_rules
from gameplane.players.context import PlayersContext
from gameplane.players.errors import PlayerNotFound
from gameplane.players.events import emit, protection_changed
from gameplane.players.models import LimitRow, Player, Protection

log = logging.getLogger("gameplane.players.safeguards")

Rows = dict[tuple[str, str], LimitRow]


def to_limit(row: LimitRow) -> rules.Limit:
    return rules.Limit(row.kind, row.period, row.value, row.pending_value, row.pending_effective_at,
                       row.pending_removal)


class _State:
    """A player's protections, locked for the length of the transaction."""

    def __init__(self, session: AsyncSession, player: Player, protection: Protection, rows: Rows) -> None:
        self.session = session
        self.player = player
        self.protection = protection
        self.rows = rows

    @classmethod
    async def lock(cls, session: AsyncSession, player_id: uuid.UUID, *, skip_locked: bool = False) -> _State | None:
        stmt = select(Protection).where(Protection.player_id == player_id).with_for_update(skip_locked=skip_locked)
        protection = (await session.execute(stmt)).scalar_one_or_none()
        if protection is None:
            return None
        player = await session.get(Player, player_id)
        assert player is not None
        found = (await session.execute(select(LimitRow).where(LimitRow.player_id == player_id))).scalars()
        return cls(session, player, protection, {(r.kind, r.period): r for r in found})

    def limits(self) -> list[rules.Limit]:
        return [to_limit(r) for r in self.rows.values()]

    async def write_limit(self, kind: str, period: str, new: rules.Limit | None) -> None:
        row = self.rows.get((kind, period))
        if new is None:
            if row is not None:
                await self.session.delete(row)
                del self.rows[(kind, period)]
            return
        if row is None:
            row = LimitRow(player_id=self.player.id, kind=kind, period=period)
            self.session.add(row)
            self.rows[(kind, period)] = row
        row.value = new.value
        row.pending_value = new.pending_value
        row.pending_effective_at = new.pending_effective_at
        row.pending_removal = new.pending_removal

    async def settle_due(self, now: datetime) -> bool:
        changed = False
        for (kind, period), row in list(self.rows.items()):
            current = to_limit(row)
            if rules.is_due(current, now):
                await self.write_limit(kind, period, rules.settle(current, now))
                changed = True
        return changed

    async def publish_change(self, now: datetime, reason: str) -> None:
        p = self.protection
        p.revision += 1
        p.updated_at = now
        await self.session.flush()
        await emit(self.session, protection_changed(
            player_id=self.player.id, revision=p.revision, currency=self.player.currency, limits=self.limits(),
            timeout_until=p.timeout_until, self_excluded_until=p.self_excluded_until,
            reality_check_minutes=p.reality_check_minutes, reason=reason))

    def snapshot(self, ctx: PlayersContext) -> ProtectionView:
        p = self.protection
        return ProtectionView(
            player_id=self.player.id, revision=p.revision, jurisdiction=ctx.profile.name,
            currency=self.player.currency,
            limits=[LimitView(kind=lim.kind, period=lim.period, value=lim.value, pending_value=lim.pending_value,
                              pending_removal=lim.pending_removal, pending_effective_at=lim.pending_effective_at)
                    for lim in sorted(self.limits(), key=lambda x: (x.kind, x.period))],
            cooling_off_seconds=int(ctx.profile.limit_increase_cooling_off.total_seconds()),
            timeout_until=p.timeout_until, self_excluded_until=p.self_excluded_until,
            reality_check_minutes=p.reality_check_minutes)


async def _locked(session: AsyncSession, player_id: uuid.UUID) -> _State:
    state = await _State.lock(session, player_id)
    if state is None:
        raise PlayerNotFound()
    return state


async def read_protection(ctx: PlayersContext, player_id: uuid.UUID) -> ProtectionView:
    """The protections as they are now; pending changes that have come due are applied (and
    published) on the way, so a reader never sees a stale limit even between sweeps."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        state = await _locked(s, player_id)
        if await state.settle_due(now):
            await state.publish_change(now, "pending-limit-applied")
        return state.snapshot(ctx)


def _limit_reason(before: rules.Limit | None, after: rules.Limit | None) -> str:
    if before is None:
        return "limit-set"
    if after is not None and after.pending_removal:
        return "limit-removal-pending"
    if after is not None and after.has_pending:
        return "limit-increase-pending"
    return "limit-decreased"


async def change_limit(ctx: PlayersContext, player_id: uuid.UUID, kind: str, period: str,
                       value: int | None) -> ProtectionView:
    """Set (value) or remove (None) one limit under the cooling-off rule."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        state = await _locked(s, player_id)
        settled = await state.settle_due(now)
        row = state.rows.get((kind, period))
        before = to_limit(row) if row is not None else None
        after = rules.request_change(before, kind, period, value, now, ctx.profile.limit_increase_cooling_off)
        if after != before:
            await state.write_limit(kind, period, after)
            await state.publish_change(now, _limit_reason(before, after))
        elif settled:
            await state.publish_change(now, "pending-limit-applied")
        return state.snapshot(ctx)


async def take_timeout(ctx: PlayersContext, player_id: uuid.UUID, days: int) -> ProtectionView:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        state = await _locked(s, player_id)
        p = state.protection
        until = prot_rules.start_timeout(now, timedelta(days=days), ctx.profile, p.timeout_until,
                                         p.self_excluded_until)
        p.timeout_until = until
        await state.publish_change(now, "timed-out")
        await emit(s, TimedOut(player_id=player_id, until=until))
        return state.snapshot(ctx)


async def self_exclude(ctx: PlayersContext, player_id: uuid.UUID, months: int) -> ProtectionView:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        state = await _locked(s, player_id)
        p = state.protection
        until = prot_rules.start_self_exclusion(now, months, ctx.profile, p.self_excluded_until)
        if not prot_rules.active(p.self_excluded_until, now):
            p.self_excluded_at = now
        p.self_excluded_until = until
        await state.publish_change(now, "self-excluded")
        await emit(s, SelfExcluded(player_id=player_id, until=until))
        return state.snapshot(ctx)


async def refuse_lifting(ctx: PlayersContext, player_id: uuid.UUID, kind: str) -> None:
    async with ctx.db.session() as s:
        p = await s.get(Protection, player_id)
        if p is None:
            raise PlayerNotFound()
        until = p.self_excluded_until if kind == "self-exclusion" else p.timeout_until
        prot_rules.refuse_lifting(kind, until, ctx.now())


async def set_reality_check(ctx: PlayersContext, player_id: uuid.UUID, minutes: int | None) -> ProtectionView:
    now = ctx.now()
    interval = prot_rules.reality_check_interval(minutes, ctx.profile)
    async with ctx.db.transaction() as s:
        state = await _locked(s, player_id)
        if state.protection.reality_check_minutes != interval:
            state.protection.reality_check_minutes = interval
            await state.publish_change(now, "reality-check-changed")
        return state.snapshot(ctx)


def eligibility_for(player: Player, protection: Protection, now: datetime) -> Eligibility:
    return prot_rules.eligibility(player.id, now, player.kyc_state,  # type: ignore[arg-type]
                                  protection.timeout_until, protection.self_excluded_until)


async def eligibility(ctx: PlayersContext, player_id: uuid.UUID) -> Eligibility:
    async with ctx.db.session() as s:
        player = await s.get(Player, player_id)
        protection = await s.get(Protection, player_id)
        if player is None or protection is None:
            raise PlayerNotFound()
        return eligibility_for(player, protection, ctx.now())


async def sweep(ctx: PlayersContext, *, batch: int = 200) -> int:
    """Apply every pending limit change that has come due; returns how many players changed.

    Rows locked by a concurrent change (or another replica's sweep) are skipped, not waited for:
    whoever holds the lock settles them, and the next sweep picks up anything left.
    """
    now = ctx.now()
    async with ctx.db.session() as s:
        due = (await s.execute(
            select(LimitRow.player_id).where(LimitRow.pending_effective_at <= now).distinct().limit(batch)
        )).scalars().all()
    changed = 0
    for player_id in due:
        async with ctx.db.transaction() as s:
            state = await _State.lock(s, player_id, skip_locked=True)
            if state is not None and await state.settle_due(now):
                await state.publish_change(now, "pending-limit-applied")
                changed += 1
    return changed


async def apply_due_changes(rt: Runtime) -> None:
    """The players service's job (gameplane.kit.periodic): limit changes whose cooling-off ended."""
    applied = await sweep(rt.state["players"])
    if applied:
        log.info("applied due limit changes for %d players", applied)
