"""Staff routes of the players service, called by the back office (service token) on behalf of a
staff member (staff token in X-Staff-Token, except for the login that issues it).

POST  /internal/players/staff/login                 username + password + TOTP -> staff token
GET   /internal/players/staff/me                    any role
POST  /internal/players/staff/accounts              admin: enrol (TOTP secret shown once)
GET   /internal/players/staff/accounts              admin
PATCH /internal/players/staff/accounts/{id}         admin: roles, active
POST  /internal/players/staff/accounts/{id}/totp    admin: new TOTP secret (shown once)
GET   /internal/players/audit                       admin: this service's audit log (gameplane.kit.audit)
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from gameplane.kit.audit import Actor, audit_router
from gameplane.kit.auth import callers
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import ROLES, StaffContext, staff
from gameplane.players import errors as e
from gameplane.players.api import players_context
from gameplane.players.context import PlayersContext
from gameplane.players.staff import accounts
from gameplane.players.staff.schemas import (
    StaffCreate,
    StaffEnrolment,
    StaffLogin,
    StaffToken,
    StaffUpdate,
    StaffView,
)

router = APIRouter(prefix="/internal/players/staff", tags=["back office"],
                   dependencies=[Depends(callers("backoffice"))])


@router.post("/login", response_model=StaffToken, responses=refusals(e.INVALID_STAFF_CREDENTIALS, e.ACCOUNT_LOCKED))
async def login(body: StaffLogin, ctx: PlayersContext = Depends(players_context)) -> StaffToken:
    return await accounts.login(ctx, body.username, body.password, body.totp)


@router.get("/me", response_model=StaffView, responses=refusals(e.STAFF_NOT_FOUND))
async def me(who: StaffContext = Depends(staff(*ROLES)),
             ctx: PlayersContext = Depends(players_context)) -> StaffView:
    return await accounts.get(ctx, who.id)


@router.post("/accounts", status_code=201, response_model=StaffEnrolment,
             responses=refusals(e.USERNAME_TAKEN, e.WEAK_PASSWORD))
async def enrol(body: StaffCreate, who: StaffContext = Depends(staff("admin")),
                ctx: PlayersContext = Depends(players_context)) -> StaffEnrolment:
    return await accounts.create(ctx, Actor.of(who), body)


@router.get("/accounts", response_model=list[StaffView])
async def list_accounts(_who: StaffContext = Depends(staff("admin")),
                        ctx: PlayersContext = Depends(players_context)) -> list[StaffView]:
    return await accounts.list_accounts(ctx)


@router.patch("/accounts/{staff_id}", response_model=StaffView,
              responses=refusals(e.STAFF_NOT_FOUND, e.LAST_ADMIN))
async def update(staff_id: uuid.UUID, body: StaffUpdate, who: StaffContext = Depends(staff("admin")),
                 ctx: PlayersContext = Depends(players_context)) -> StaffView:
    return await accounts.update(ctx, Actor.of(who), staff_id, body)


@router.post("/accounts/{staff_id}/totp", response_model=StaffEnrolment, responses=refusals(e.STAFF_NOT_FOUND))
async def reset_totp(staff_id: uuid.UUID, who: StaffContext = Depends(staff("admin")),
                     ctx: PlayersContext = Depends(players_context)) -> StaffEnrolment:
    return await accounts.reset_totp(ctx, Actor.of(who), staff_id)


routers = (router, audit_router("/internal/players"))
