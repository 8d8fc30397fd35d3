"""The staff audit log: an append-only table in the database of each service that has back-office
routes, written in the same transaction as the action it records, and listed by admins.

A service that gets back-office routes:
  - models.py:     `add_audit_table(Base.metadata)`
  - a migration:   `create_audit_table()` (upgrade) / `drop_audit_table()` (downgrade)
  - each action:   `await audit.record(s, Actor.of(who), "wallet.adjustment", target, before, after, at=now)`
                   inside the action's own transaction, so there is no action without its record
  - its routers:   `audit_router("/internal/<service>")` adds `GET /internal/<service>/audit` (admin)

Append-only is enforced by Postgres: triggers refuse UPDATE, DELETE and TRUNCATE on the table for
every role, the service's own included (only its owner dropping the trigger gets around it, and
that is a schema change, visible in the migrations).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, String, Table, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.kit.auth import callers
from gameplane.kit.db import NAMING
from gameplane.kit.logs import request_id_var
from gameplane.kit.staff import Role, StaffContext, staff

TABLE = "audit_log"


def add_audit_table(metadata: MetaData) -> Table:
    return Table(
        TABLE, metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("actor_id", String(64), nullable=False),
        Column("actor", String(200), nullable=False),  # the username as it was at the time
        Column("roles", JSONB, nullable=False),
        Column("action", String(100), nullable=False),
        Column("target", String(200), nullable=True),
        Column("before", JSONB, nullable=True),
        Column("after", JSONB, nullable=True),
        Column("request_id", String(200), nullable=True),
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_target_id", "target", "id"),
        Index("ix_audit_log_at", "at"),
    )


audit_log = add_audit_table(MetaData(naming_convention=NAMING))

_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'GPA01'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def create_audit_table() -> None:
    """Call from a service's migration: the table, its indexes and the append-only triggers."""
    from alembic import op

    md = MetaData(naming_convention=NAMING)
    add_audit_table(md)
    md.create_all(op.get_bind())
    for stmt in _APPEND_ONLY:
        op.get_bind().exec_driver_sql(stmt)


def drop_audit_table() -> None:
    from alembic import op

    op.get_bind().exec_driver_sql(f"DROP TABLE {TABLE}")
    op.get_bind().exec_driver_sql("DROP FUNCTION audit_log_append_only()")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a staff member, or an operator's command line (`cli:<command>`)."""

    id: str
    name: str
    roles: tuple[str, ...] = ()

    @classmethod
    def of(cls, who: StaffContext) -> Actor:
        return cls(str(who.id), who.username, tuple(who.roles))


async def record(s: AsyncSession, actor: Actor, action: str, target: str | None, before: Any, after: Any,
                 *, at: datetime) -> None:
    """Append one record in the caller's transaction (it commits or rolls back with the action)."""
    await s.execute(insert(audit_log).values(
        at=at, actor_id=actor.id, actor=actor.name, roles=list(actor.roles), action=action, target=target,
        before=to_jsonable_python(before), after=to_jsonable_python(after), request_id=request_id_var.get()))


class AuditRecord(BaseModel):
    id: int
    at: datetime
    actor_id: str
    actor: str
    roles: list[str]
    action: str
    target: str | None
    before: Any
    after: Any
    request_id: str | None


class AuditPage(BaseModel):
    """Newest first; pass `next_cursor` as `cursor` for the next (older) page, null at the end."""

    records: list[AuditRecord]
    next_cursor: int | None


async def list_records(s: AsyncSession, *, actor: str | None = None, target: str | None = None,
                       action: str | None = None, since: datetime | None = None, until: datetime | None = None,
                       cursor: int | None = None, limit: int = 50) -> AuditPage:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
    if actor is not None:
        q = q.where(audit_log.c.actor == actor)
    if target is not None:
        q = q.where(audit_log.c.target == target)
    if action is not None:
        q = q.where(audit_log.c.action == action)
    if since is not None:
        q = q.where(audit_log.c.at >= since)
    if until is not None:
        q = q.where(audit_log.c.at < until)
    if cursor is not None:
        q = q.where(audit_log.c.id < cursor)
    rows = (await s.execute(q)).mappings().all()
    page = [AuditRecord.model_validate(dict(r)) for r in rows[:limit]]
    return AuditPage(records=page, next_cursor=page[-1].id if len(rows) > limit else None)


# Postgres cannot store NUL in text: refused as a 422 here rather than failing in the driver.
_Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]+$")]


def audit_router(prefix: str, roles: Sequence[Role] = ("admin",)) -> APIRouter:
    """`GET {prefix}/audit`: the service's audit records, filtered and paginated (staff `roles`)."""
    router = APIRouter(prefix=prefix, tags=["back office"], dependencies=[Depends(callers("backoffice"))])

    @router.get("/audit", response_model=AuditPage)
    async def list_audit(request: Request, _who: StaffContext = Depends(staff(*roles)),
                         actor: _Text = None, target: _Text = None, action: _Text = None,
                         since: AwareDatetime | None = None, until: AwareDatetime | None = None,
                         cursor: int | None = Query(None, ge=1, le=2**63 - 1),
                         limit: int = Query(50, ge=1, le=500)) -> AuditPage:
        """Staff audit records of this service, newest first. `since` is inclusive, `until` exclusive."""
        async with request.app.state.runtime.database.session() as s:
            return await list_records(s, actor=actor, target=target, action=action, since=since, until=until,
                                      cursor=cursor, limit=limit)

    return router


def target_of(kind: str, ident: uuid.UUID | str) -> str:
    """The one spelling of a target: `player:<uuid>`, `staff:<uuid>`."""
    return f"{kind}:{ident}"
