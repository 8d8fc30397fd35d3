"""Account workflows against the database: registration, login, refresh-token rotation, logout,
profile, password change and KYC."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import KycChanged, KycDecision, KycState, LoggedIn, PlayerRegistered
from gameplane.kit import audit
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.auth import issue_player_token
from gameplane.kit.problems import Problem
from gameplane.players import kyc, lockout, metrics, tokens
from gameplane.players.age import check_adult
from gameplane.players.context import PlayersContext
from gameplane.players.errors import (
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    PlayerNotFound,
    RefreshRefused,
    WrongPassword,
)
from gameplane.players.events import emit, protection_changed
from gameplane.players.limits import Limit
from gameplane.players.models import KycSubmission, LimitRow, Player, PlayerNote, Protection, RefreshToken
from gameplane.players.passwords import check_strength
from gameplane.players.safeguards import eligibility_for
from gameplane.players.schemas import KycOut, KycSubmit, PasswordChange, ProfileUpdate, RegisterRequest, TokenResponse


async def register(ctx: PlayersContext, req: RegisterRequest) -> Player:
    try:
        player = await _register(ctx, req)
    except Problem as exc:
        metrics.REGISTRATIONS.labels(ctx.settings.jurisdiction, exc.slug).inc()
        raise
    metrics.REGISTRATIONS.labels(ctx.settings.jurisdiction, "registered").inc()
    return player


async def _register(ctx: PlayersContext, req: RegisterRequest) -> Player:
    now = ctx.now()
    check_adult(req.date_of_birth, now.date(), ctx.profile.minimum_age)
    check_strength(req.password, req.email)
    async with ctx.db.session() as s:
        # Cheap refusal before the deliberately expensive hash; the unique index still decides races.
        if (await s.execute(select(Player.id).where(Player.email == req.email))).first() is not None:
            raise EmailTaken()
    password_hash = await asyncio.to_thread(ctx.passwords.hash, req.password)
    prompt = req.deposit_limits.model_dump(exclude_none=True) if req.deposit_limits else {}
    # First limits only protect more, so they apply at once.
    first_limits = [Limit("deposit", period, value) for period, value in prompt.items()]
    player = Player(id=uuid.uuid4(), email=req.email, password_hash=password_hash, date_of_birth=req.date_of_birth,
                    country=req.country, currency=req.currency, first_name=req.first_name, last_name=req.last_name,
                    locale=req.locale, marketing_opt_in=req.marketing_opt_in,
                    affiliate_click_id=req.affiliate_click_id, kyc_state="unverified", registered_at=now,
                    updated_at=now, password_changed_at=now, failed_logins=0)
    try:
        async with ctx.db.transaction() as s:
            s.add(player)
            await s.flush()
            protection = Protection(player_id=player.id, revision=1, updated_at=now,
                                    reality_check_minutes=ctx.profile.reality_check_default_minutes)
            s.add(protection)
            s.add_all(LimitRow(player_id=player.id, kind=lim.kind, period=lim.period, value=lim.value,
                               pending_removal=False) for lim in first_limits)
            await s.flush()
            await emit(s, PlayerRegistered(
                player_id=player.id, email=player.email, country=player.country, currency=player.currency,
                date_of_birth=player.date_of_birth, registered_at=now, affiliate_click_id=player.affiliate_click_id))
            await emit(s, protection_changed(
                player_id=player.id, revision=protection.revision, currency=player.currency, limits=first_limits,
                timeout_until=None, self_excluded_until=None,
                reality_check_minutes=protection.reality_check_minutes, reason="registered"))
    except IntegrityError as exc:
        if "uq_players_email" in str(exc.orig):
            raise EmailTaken() from None
        raise
    return player


async def get_player(ctx: PlayersContext, player_id: uuid.UUID) -> Player:
    async with ctx.db.session() as s:
        player = await s.get(Player, player_id)
    if player is None:
        raise PlayerNotFound()
    return player


async def search(ctx: PlayersContext, q: str | None, kyc_state: KycState | None, limit: int,
                 offset: int = 0) -> list[Player]:
    """The back office's player search: an id, or the start of an email (stored lower case); `offset`
    rows of the same order skipped (pages of a search)."""
    query = select(Player)
    if q is not None:
        q = q.strip().lower()
        try:
            query = query.where(Player.id == uuid.UUID(q))
        except ValueError:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(Player.email.like(f"{escaped}%", escape="\\"))
    if kyc_state is not None:
        query = query.where(Player.kyc_state == kyc_state)
    query = query.order_by(Player.kyc_updated_at.asc().nulls_last(), Player.registered_at, Player.id)
    query = query.offset(offset).limit(limit)
    async with ctx.db.session() as s:
        return list((await s.scalars(query)).all())


async def add_note(ctx: PlayersContext, player_id: uuid.UUID, text: str, by: Actor) -> PlayerNote:
    """A staff note, written with its audit record in one transaction."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        await _lock_player(s, player_id)
        note = PlayerNote(id=uuid.uuid4(), player_id=player_id, at=now, author=f"staff:{by.name}", text=text)
        s.add(note)
        await audit.record(s, by, "players.note_added", target_of("player", player_id), None,
                           {"note_id": str(note.id), "text": text}, at=now)
    return note


async def notes(ctx: PlayersContext, player_id: uuid.UUID, limit: int) -> list[PlayerNote]:
    async with ctx.db.session() as s:
        if await s.get(Player, player_id) is None:
            raise PlayerNotFound()
        q = select(PlayerNote).where(PlayerNote.player_id == player_id).order_by(PlayerNote.at.desc()).limit(limit)
        return list((await s.scalars(q)).all())


async def _lock_player(s: AsyncSession, player_id: uuid.UUID) -> Player:
    player = (await s.execute(select(Player).where(Player.id == player_id).with_for_update())).scalar_one_or_none()
    if player is None:
        raise PlayerNotFound()
    return player


def _failures(p: Player) -> lockout.Failures:
    return lockout.Failures(p.failed_logins, p.failed_window_started_at, p.locked_until)


async def _issue_refresh(ctx: PlayersContext, s: AsyncSession, player_id: uuid.UUID, family_id: uuid.UUID,
                         now: datetime) -> str:
    token = tokens.new_refresh_token()
    s.add(RefreshToken(family_id=family_id, player_id=player_id, token_hash=tokens.hash_refresh_token(token),
                       issued_at=now,
                       expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds)))
    return token


async def _token_response(ctx: PlayersContext, s: AsyncSession, player: Player, refresh_token: str,
                          now: datetime) -> TokenResponse:
    protection = await s.get(Protection, player.id)
    assert protection is not None
    play = eligibility_for(player, protection, now).can_play
    ttl = ctx.settings.access_token_ttl_seconds
    access = issue_player_token(ctx.signing_key, player.id, ttl=ttl, play=play,
                                kyc=player.kyc_state, currency=player.currency)
    return TokenResponse(access_token=access, expires_in=ttl, refresh_token=refresh_token,
                         refresh_expires_in=ctx.settings.refresh_token_ttl_seconds, player_id=player.id, play=play)


async def login(ctx: PlayersContext, email: str, password: str, *, ip: str | None = None,
                device_id: str | None = None) -> TokenResponse:
    """Self-excluded and timed-out players still log in (they must be able to withdraw), but their
    access token says `play: false`. A login publishes `players.logged_in` with where it came from."""
    now = ctx.now()
    async with ctx.db.session() as s:
        found = (await s.execute(select(Player).where(Player.email == email))).scalar_one_or_none()
    if found is not None and lockout.locked(_failures(found), now):
        assert found.locked_until is not None
        raise AccountLocked(max(1, int((found.locked_until - now).total_seconds())))
    stored = found.password_hash if found is not None else None
    if not await asyncio.to_thread(ctx.passwords.verify, stored, password):
        if found is not None:
            await _record_failure(ctx, found.id, now)
        raise InvalidCredentials()
    assert found is not None
    rehashed = None
    if ctx.passwords.needs_rehash(found.password_hash):
        rehashed = await asyncio.to_thread(ctx.passwords.hash, password)
    async with ctx.db.transaction() as s:
        player = await _lock_player(s, found.id)
        player.failed_logins = 0
        player.failed_window_started_at = None
        player.locked_until = None
        player.last_login_at = now
        if rehashed is not None:
            player.password_hash = rehashed
        refresh = await _issue_refresh(ctx, s, player.id, uuid.uuid4(), now)
        await emit(s, LoggedIn(player_id=player.id, ip=ip, device_id=device_id, at=now))
        return await _token_response(ctx, s, player, refresh, now)


async def _record_failure(ctx: PlayersContext, player_id: uuid.UUID, now: datetime) -> None:
    async with ctx.db.transaction() as s:
        player = await _lock_player(s, player_id)
        state = lockout.record_failure(
            _failures(player), now, max_failures=ctx.settings.login_max_failures,
            window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
            lock_for=timedelta(seconds=ctx.settings.login_lock_seconds))
        player.failed_logins = state.count
        player.failed_window_started_at = state.window_started_at
        player.locked_until = state.locked_until


async def _revoke_family(s: AsyncSession, family_id: uuid.UUID, now: datetime, reason: str) -> None:
    await s.execute(update(RefreshToken)
                    .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason=reason))


async def refresh(ctx: PlayersContext, presented: str) -> TokenResponse:
    now = ctx.now()
    verdict: str
    async with ctx.db.transaction() as s:
        row = (await s.execute(select(RefreshToken)
                               .where(RefreshToken.token_hash == tokens.hash_refresh_token(presented))
                               .with_for_update())).scalar_one_or_none()
        if row is None:
            verdict = "unknown"
        else:
            verdict = tokens.judge_refresh(rotated_at=row.rotated_at, revoked_at=row.revoked_at,
                                           expires_at=row.expires_at, now=now)
            if verdict == "reused":
                # Committed before the refusal is raised: the revocation must survive the 401.
                await _revoke_family(s, row.family_id, now, "reuse")
            elif verdict == "rotate":
                row.rotated_at = now
                player = await s.get(Player, row.player_id)
                assert player is not None
                successor = await _issue_refresh(ctx, s, row.player_id, row.family_id, now)
                return await _token_response(ctx, s, player, successor, now)
    raise RefreshRefused({"unknown": "invalid-refresh-token", "reused": "refresh-token-reused",
                          "revoked": "refresh-token-revoked", "expired": "refresh-token-expired"}[verdict])


async def logout(ctx: PlayersContext, presented: str) -> None:
    """Revokes the whole family of the token: every refresh token descended from that login."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        row = (await s.execute(select(RefreshToken)
                               .where(RefreshToken.token_hash == tokens.hash_refresh_token(presented))
                               )).scalar_one_or_none()
        if row is not None:
            await _revoke_family(s, row.family_id, now, "logout")


async def update_profile(ctx: PlayersContext, player_id: uuid.UUID, changes: ProfileUpdate) -> Player:
    fields: dict[str, Any] = changes.model_dump(exclude_unset=True)
    async with ctx.db.transaction() as s:
        player = await _lock_player(s, player_id)
        for name, value in fields.items():
            setattr(player, name, value)
        if fields:
            player.updated_at = ctx.now()
    return player


async def change_password(ctx: PlayersContext, player_id: uuid.UUID, req: PasswordChange) -> None:
    player = await get_player(ctx, player_id)
    if not await asyncio.to_thread(ctx.passwords.verify, player.password_hash, req.current_password):
        raise WrongPassword()
    check_strength(req.new_password, player.email)
    new_hash = await asyncio.to_thread(ctx.passwords.hash, req.new_password)
    now = ctx.now()
    async with ctx.db.transaction() as s:
        locked = await _lock_player(s, player_id)
        locked.password_hash = new_hash
        locked.password_changed_at = now
        locked.updated_at = now
        # A changed password ends every login, including any an attacker may hold.
        await s.execute(update(RefreshToken)
                        .where(RefreshToken.player_id == player_id, RefreshToken.revoked_at.is_(None))
                        .values(revoked_at=now, revoked_reason="password-changed"))


async def _last_reason(s: AsyncSession, player_id: uuid.UUID) -> str | None:
    return (await s.execute(select(KycSubmission.reason).where(KycSubmission.player_id == player_id)
                            .order_by(KycSubmission.submitted_at.desc()).limit(1))).scalar_one_or_none()


async def kyc_status(ctx: PlayersContext, player_id: uuid.UUID) -> KycOut:
    async with ctx.db.session() as s:
        player = await s.get(Player, player_id)
        if player is None:
            raise PlayerNotFound()
        return KycOut(state=cast(KycState, player.kyc_state), updated_at=player.kyc_updated_at,
                      last_reason=await _last_reason(s, player_id))


async def submit_kyc(ctx: PlayersContext, player_id: uuid.UUID, req: KycSubmit) -> KycOut:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        player = await _lock_player(s, player_id)
        previous = cast(KycState, player.kyc_state)
        player.kyc_state = kyc.transition(previous, "pending")
        player.kyc_updated_at = now
        s.add(KycSubmission(player_id=player_id, document_type=req.document_type,
                            document_reference=req.document_reference, submitted_at=now))
        await emit(s, KycChanged(player_id=player_id, previous=previous, state="pending"))
        return KycOut(state="pending", updated_at=now)


async def decide_kyc(ctx: PlayersContext, player_id: uuid.UUID, decision: KycDecision, by: Actor) -> KycOut:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        player = await _lock_player(s, player_id)
        previous = cast(KycState, player.kyc_state)
        player.kyc_state = kyc.transition(previous, decision.state)
        player.kyc_updated_at = now
        await s.execute(update(KycSubmission)
                        .where(KycSubmission.player_id == player_id, KycSubmission.decision.is_(None))
                        .values(decision=decision.state, reason=decision.reason, decided_by=f"staff:{by.name}",
                                decided_at=now))
        await audit.record(s, by, "players.kyc_decision", target_of("player", player_id),
                           {"kyc_state": previous}, {"kyc_state": decision.state, "reason": decision.reason}, at=now)
        await emit(s, KycChanged(player_id=player_id, previous=previous, state=decision.state,
                                 reason=decision.reason))
        return KycOut(state=decision.state, updated_at=now, last_reason=decision.reason)
