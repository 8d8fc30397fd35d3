"""Staff account workflows: enrolment, login (password + TOTP, lockout), role and status changes,
TOTP reset and the command-line bootstrap of the first admin. Each one writes its audit record
(gameplane.kit.audit) in the transaction that makes the change; failed logins are recorded too,
with the reason the caller is not told."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.kit import audit
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.staff import Role, issue_staff_token
from gameplane.players import lockout
from gameplane.players.context import PlayersContext
from gameplane.players.errors import (
    AccountLocked,
    InvalidStaffCredentials,
    LastAdmin,
    StaffNotFound,
    UsernameTaken,
    WeakPassword,
)
from gameplane.players.models import StaffAccount
from gameplane.players.passwords import check_strength
from gameplane.players.staff import totp
from gameplane.players.staff.schemas import StaffCreate, StaffEnrolment, StaffToken, StaffUpdate, StaffView


def view(a: StaffAccount) -> StaffView:
    return StaffView(id=a.id, username=a.username, roles=cast(list[Role], a.roles), active=a.active,
                     created_at=a.created_at, created_by=a.created_by, last_login_at=a.last_login_at)


def _public(a: StaffAccount) -> dict[str, object]:
    """What an audit record keeps of an account: never a hash or a secret."""
    return {"username": a.username, "roles": sorted(a.roles), "active": a.active}


def _enrolment(ctx: PlayersContext, a: StaffAccount) -> StaffEnrolment:
    return StaffEnrolment(staff=view(a), totp_secret=a.totp_secret,
                          totp_provisioning_uri=totp.provisioning_uri(a.totp_secret, a.username,
                                                                      ctx.settings.staff_totp_issuer))


async def _lock(s: AsyncSession, staff_id: uuid.UUID) -> StaffAccount:
    row = (await s.execute(select(StaffAccount).where(StaffAccount.id == staff_id).with_for_update())
           ).scalar_one_or_none()
    if row is None:
        raise StaffNotFound()
    return row


async def create(ctx: PlayersContext, by: Actor, req: StaffCreate) -> StaffEnrolment:
    check_strength(req.password)
    if req.username in req.password.lower():
        raise WeakPassword(["must not contain the username"])
    async with ctx.db.session() as s:
        if (await s.execute(select(StaffAccount.id).where(StaffAccount.username == req.username))).first():
            raise UsernameTaken()
    password_hash = await asyncio.to_thread(ctx.passwords.hash, req.password)
    now = ctx.now()
    account = StaffAccount(id=uuid.uuid4(), username=req.username, password_hash=password_hash,
                           roles=list(req.roles), totp_secret=totp.new_secret(), active=True, created_at=now,
                           created_by=by.name, updated_at=now, failed_logins=0)
    try:
        async with ctx.db.transaction() as s:
            s.add(account)
            await s.flush()
            await audit.record(s, by, "staff.created", target_of("staff", account.id), None, _public(account),
                               at=now)
    except IntegrityError as exc:
        if "uq_staff_accounts_username" in str(exc.orig):
            raise UsernameTaken() from None
        raise
    return _enrolment(ctx, account)


async def list_accounts(ctx: PlayersContext) -> list[StaffView]:
    async with ctx.db.session() as s:
        rows = (await s.execute(select(StaffAccount).order_by(StaffAccount.username))).scalars().all()
    return [view(a) for a in rows]


async def get(ctx: PlayersContext, staff_id: uuid.UUID) -> StaffView:
    async with ctx.db.session() as s:
        a = await s.get(StaffAccount, staff_id)
    if a is None:
        raise StaffNotFound()
    return view(a)


async def _active_admins(s: AsyncSession, *, besides: uuid.UUID | None = None) -> int:
    q = (select(func.count()).select_from(StaffAccount)
         .where(StaffAccount.active, StaffAccount.roles.contains(["admin"])))
    if besides is not None:
        q = q.where(StaffAccount.id != besides)
    return int((await s.execute(q)).scalar_one())


async def update(ctx: PlayersContext, by: Actor, staff_id: uuid.UUID, req: StaffUpdate) -> StaffView:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        # Serialises admin changes, so two admins demoting each other cannot leave none.
        await s.execute(select(func.pg_advisory_xact_lock(0x57AFF)))
        a = await _lock(s, staff_id)
        before = _public(a)
        was_admin = a.active and "admin" in a.roles
        if req.roles is not None:
            a.roles = list(req.roles)
        if req.active is not None:
            a.active = req.active
        if was_admin and not (a.active and "admin" in a.roles) and not await _active_admins(s, besides=staff_id):
            raise LastAdmin()
        after = _public(a)
        if after != before:
            a.updated_at = now
            await audit.record(s, by, "staff.updated", target_of("staff", a.id), before, after, at=now)
        return view(a)


async def reset_totp(ctx: PlayersContext, by: Actor, staff_id: uuid.UUID) -> StaffEnrolment:
    """A lost authenticator: a new secret, shown once; codes of the old one stop working at once."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        a = await _lock(s, staff_id)
        a.totp_secret = totp.new_secret()
        a.totp_last_step = None
        a.updated_at = now
        await audit.record(s, by, "staff.totp_reset", target_of("staff", a.id), None, None, at=now)
        return _enrolment(ctx, a)


def _failures(a: StaffAccount) -> lockout.Failures:
    return lockout.Failures(a.failed_logins, a.failed_window_started_at, a.locked_until)


async def _refuse(ctx: PlayersContext, found: StaffAccount | None, username: str, reason: str,
                  now: datetime) -> None:
    """Count the failure (lockout) and audit it, committed before the 401 goes out."""
    async with ctx.db.transaction() as s:
        if found is None:
            actor = Actor("unknown", username[:200])
            target = None
        else:
            a = await _lock(s, found.id)
            actor = Actor(str(a.id), a.username, tuple(a.roles))
            target = target_of("staff", a.id)
            if reason != "locked":
                state = lockout.record_failure(
                    _failures(a), now, max_failures=ctx.settings.login_max_failures,
                    window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
                    lock_for=timedelta(seconds=ctx.settings.login_lock_seconds))
                a.failed_logins, a.failed_window_started_at, a.locked_until = (
                    state.count, state.window_started_at, state.locked_until)
        await audit.record(s, actor, "staff.login_failed", target, None, {"reason": reason}, at=now)


async def login(ctx: PlayersContext, username: str, password: str, code: str) -> StaffToken:
    now = ctx.now()
    username = username.lower()
    async with ctx.db.session() as s:
        found = (await s.execute(select(StaffAccount).where(StaffAccount.username == username))
                 ).scalar_one_or_none()
    if found is not None and lockout.locked(_failures(found), now):
        assert found.locked_until is not None
        await _refuse(ctx, found, username, "locked", now)
        raise AccountLocked(max(1, int((found.locked_until - now).total_seconds())))
    password_ok = await asyncio.to_thread(ctx.passwords.verify, found.password_hash if found else None, password)
    if found is None or not password_ok or not found.active:
        reason = "unknown-username" if found is None else "wrong-password" if not password_ok else "inactive"
        await _refuse(ctx, found, username, reason, now)
        raise InvalidStaffCredentials()
    async with ctx.db.transaction() as s:
        a = await _lock(s, found.id)
        # Checked under the row lock: two logins racing with one code cannot both take it.
        verdict, step = totp.check(a.totp_secret, code, now, a.totp_last_step)
        if verdict == "ok":
            a.totp_last_step = step
            a.failed_logins, a.failed_window_started_at, a.locked_until = 0, None, None
            a.last_login_at = now
            who = Actor(str(a.id), a.username, tuple(a.roles))
            await audit.record(s, who, "staff.login", target_of("staff", a.id), None,
                               {"roles": sorted(a.roles)}, at=now)
            ttl = ctx.settings.staff_token_ttl_seconds
            token = issue_staff_token(ctx.signing_key, a.id, a.username,
                                      cast(list[Role], a.roles), ttl=ttl)
            return StaffToken(access_token=token, expires_in=ttl, staff=view(a))
    await _refuse(ctx, found, username, f"{verdict}-totp", now)
    raise InvalidStaffCredentials()


async def bootstrap_admin(ctx: PlayersContext, username: str, password: str, *, force: bool) -> StaffEnrolment:
    """The first admin, from the command line (there is no default account). Refused while an
    active admin exists, unless `force` (a lost sole admin): either way it is audited."""
    if not force:
        async with ctx.db.session() as s:
            if await _active_admins(s):
                raise AdminExists()
    req = StaffCreate(username=username, roles=["admin"], password=password)
    return await create(ctx, Actor("cli", "cli:create-admin" + (" --force" if force else "")), req)


class AdminExists(Exception):
    def __init__(self) -> None:
        super().__init__("an active admin exists already: create further accounts through the staff API "
                         "(or pass --force to recover from a lost sole admin)")
