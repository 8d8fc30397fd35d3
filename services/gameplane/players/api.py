"""Routes of the players service.

public   /v1/players/register|login|token/refresh|logout   (service token: the gateway's)
player   /v1/players/me...                                   (the gateway's service token + X-Player-Id)
internal /internal/players/...                               (service token of the callers each route names)
back office /internal/players/{id}/kyc/decision              (service token + staff token: risk, admin)
            /internal/players?q=&kyc_state=                    (service token + staff token: any role)
            /internal/players/{id}/notes                       (service token + staff token: any role)
staff    /internal/players/staff/..., /internal/players/audit (gameplane.players.staff.api)
keys     /.well-known/jwks.json                              (no auth: players' public keys)
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from gameplane.contracts.players import (
    DEVICE_HEADER,
    Eligibility,
    KycDecision,
    KycState,
    PlayerSummary,
    ProtectionView,
)
from gameplane.kit.audit import Actor
from gameplane.kit.auth import CLIENT_IP_HEADER, PlayerContext, callers, player_context
from gameplane.kit.keys import KeySet
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff
from gameplane.players import accounts, safeguards
from gameplane.players import errors as e
from gameplane.players.context import PlayersContext
from gameplane.players.limits import LimitKind, LimitPeriod
from gameplane.players.models import Player
from gameplane.players.schemas import (
    KycOut,
    KycSubmit,
    LimitRequest,
    LoginRequest,
    NoteCreate,
    NoteView,
    PasswordChange,
    PlayerOut,
    ProfileUpdate,
    RealityCheckRequest,
    RefreshRequest,
    RegisterRequest,
    SelfExclusionRequest,
    TimeoutRequest,
    TokenResponse,
)

NOT_FOUND = refusals(e.PLAYER_NOT_FOUND)


def players_context(request: Request) -> PlayersContext:
    ctx: PlayersContext = request.app.state.players
    return ctx


def player_out(p: Player) -> PlayerOut:
    return PlayerOut(id=p.id, email=p.email, first_name=p.first_name, last_name=p.last_name, phone=p.phone,
                     locale=p.locale, marketing_opt_in=p.marketing_opt_in, date_of_birth=p.date_of_birth,
                     country=p.country, currency=p.currency, kyc_state=p.kyc_state,  # type: ignore[arg-type]
                     registered_at=p.registered_at)


public = APIRouter(prefix="/v1/players", tags=["players"], dependencies=[Depends(callers("gateway"))])


@public.post("/register", status_code=201, response_model=PlayerOut,
             responses=refusals(e.EMAIL_TAKEN, e.UNDERAGE, e.WEAK_PASSWORD, e.INVALID_DATE_OF_BIRTH))
async def register(body: RegisterRequest, ctx: PlayersContext = Depends(players_context)) -> PlayerOut:
    return player_out(await accounts.register(ctx, body))


def _header_value(request: Request, name: str) -> str | None:
    """A header as an event may carry it: at most 200 printable characters, else left out."""
    value = (request.headers.get(name) or "").strip()
    return value if value and len(value) <= 200 and value.isprintable() else None


@public.post("/login", response_model=TokenResponse, responses=refusals(e.INVALID_CREDENTIALS, e.ACCOUNT_LOCKED))
async def login(body: LoginRequest, request: Request, ctx: PlayersContext = Depends(players_context)) -> TokenResponse:
    # The address is the gateway's judgement (only the gateway may call this route); the device
    # id is whatever the client says, for risk's shared-device rule.
    return await accounts.login(ctx, body.email, body.password, ip=_header_value(request, CLIENT_IP_HEADER),
                                device_id=_header_value(request, DEVICE_HEADER))


@public.post("/token/refresh", response_model=TokenResponse, responses=refusals(*e.REFRESH_REFUSALS.values()))
async def refresh(body: RefreshRequest, ctx: PlayersContext = Depends(players_context)) -> TokenResponse:
    return await accounts.refresh(ctx, body.refresh_token)


@public.post("/logout", status_code=204)
async def logout(body: RefreshRequest, ctx: PlayersContext = Depends(players_context)) -> Response:
    await accounts.logout(ctx, body.refresh_token)
    return Response(status_code=204)


me = APIRouter(prefix="/v1/players/me", tags=["players: me"])


@me.get("", response_model=PlayerOut, responses=NOT_FOUND)
async def read_me(who: PlayerContext = Depends(player_context),
                  ctx: PlayersContext = Depends(players_context)) -> PlayerOut:
    return player_out(await accounts.get_player(ctx, who.player_id))


@me.patch("", response_model=PlayerOut, responses=NOT_FOUND)
async def update_me(body: ProfileUpdate, who: PlayerContext = Depends(player_context),
                    ctx: PlayersContext = Depends(players_context)) -> PlayerOut:
    return player_out(await accounts.update_profile(ctx, who.player_id, body))


@me.post("/password", status_code=204,
         responses=refusals(e.WRONG_PASSWORD, e.WEAK_PASSWORD, e.PLAYER_NOT_FOUND))
async def change_password(body: PasswordChange, who: PlayerContext = Depends(player_context),
                          ctx: PlayersContext = Depends(players_context)) -> Response:
    await accounts.change_password(ctx, who.player_id, body)
    return Response(status_code=204)


@me.get("/kyc", response_model=KycOut, responses=NOT_FOUND)
async def read_kyc(who: PlayerContext = Depends(player_context),
                   ctx: PlayersContext = Depends(players_context)) -> KycOut:
    return await accounts.kyc_status(ctx, who.player_id)


@me.post("/kyc", status_code=202, response_model=KycOut,
         responses=refusals(e.INVALID_KYC_TRANSITION, e.PLAYER_NOT_FOUND))
async def submit_kyc(body: KycSubmit, who: PlayerContext = Depends(player_context),
                     ctx: PlayersContext = Depends(players_context)) -> KycOut:
    return await accounts.submit_kyc(ctx, who.player_id, body)


@me.get("/protection", response_model=ProtectionView, responses=NOT_FOUND)
async def read_protection(who: PlayerContext = Depends(player_context),
                          ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    return await safeguards.read_protection(ctx, who.player_id)


@me.put("/limits", response_model=ProtectionView, responses=refusals(e.INVALID_LIMIT, e.PLAYER_NOT_FOUND))
async def set_limit(body: LimitRequest, who: PlayerContext = Depends(player_context),
                    ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    """A first limit or a decrease applies at once; an increase waits the cooling-off period."""
    return await safeguards.change_limit(ctx, who.player_id, body.kind, body.period, body.value)


@me.delete("/limits/{kind}/{period}", response_model=ProtectionView,
           responses=refusals(e.INVALID_LIMIT, e.PLAYER_NOT_FOUND))
async def remove_limit(kind: LimitKind, period: LimitPeriod, who: PlayerContext = Depends(player_context),
                       ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    """Removal is a loosening: it takes effect after the cooling-off period."""
    return await safeguards.change_limit(ctx, who.player_id, kind, period, None)


@me.post("/timeout", response_model=ProtectionView,
         responses=refusals(e.ALREADY_SELF_EXCLUDED, e.TIMEOUT_CANNOT_BE_SHORTENED, e.INVALID_TIMEOUT,
                            e.PLAYER_NOT_FOUND))
async def take_timeout(body: TimeoutRequest, who: PlayerContext = Depends(player_context),
                       ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    return await safeguards.take_timeout(ctx, who.player_id, body.days)


@me.post("/self-exclusion", response_model=ProtectionView,
         responses=refusals(e.SELF_EXCLUSION_CANNOT_BE_SHORTENED, e.INVALID_SELF_EXCLUSION, e.PLAYER_NOT_FOUND))
async def self_exclude(body: SelfExclusionRequest, who: PlayerContext = Depends(player_context),
                       ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    return await safeguards.self_exclude(ctx, who.player_id, body.months)


def _lifting(kind: Literal["timeout", "self-exclusion"]) -> None:
    # One route per protection rather than DELETE /me/{kind}: a path parameter there would also
    # match DELETE /me/limits, /me/kyc, ... and answer 422 where 405 (with their methods) belongs.
    async def lift(who: PlayerContext = Depends(player_context),
                   ctx: PlayersContext = Depends(players_context)) -> Response:
        await safeguards.refuse_lifting(ctx, who.player_id, kind)
        return Response(status_code=204)  # unreachable: refuse_lifting always raises

    me.add_api_route(f"/{kind}", lift, methods=["DELETE"], status_code=204, name=f"lift_{kind.replace('-', '_')}",
                     summary=f"Lift a {kind}",
                     description="Always refused while active: a break taken cannot be undone early "
                                 "(this answers with its end).",
                     responses=refusals(e.CANNOT_BE_LIFTED[kind], e.NOTHING_TO_LIFT[kind], e.PLAYER_NOT_FOUND))


_lifting("timeout")
_lifting("self-exclusion")


@me.put("/reality-check", response_model=ProtectionView,
         responses=refusals(e.REALITY_CHECK_REQUIRED, e.INVALID_REALITY_CHECK, e.PLAYER_NOT_FOUND))
async def set_reality_check(body: RealityCheckRequest, who: PlayerContext = Depends(player_context),
                            ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    return await safeguards.set_reality_check(ctx, who.player_id, body.minutes)


internal = APIRouter(prefix="/internal/players", tags=["internal"])


@internal.get("", response_model=list[PlayerSummary])
async def search_players(_caller: str = Depends(callers("backoffice")),
                         _who: StaffContext = Depends(staff("support", "risk", "finance", "admin")),
                         q: str | None = Query(None, min_length=1, max_length=320, pattern=r"^[^\x00]+$",
                                               description="an email or its start, or a player id"),
                         kyc_state: KycState | None = None, limit: int = Query(50, ge=1, le=200),
                         offset: int = Query(0, ge=0, le=1_000_000, description="rows of the result to skip"),
                         ctx: PlayersContext = Depends(players_context)) -> list[PlayerSummary]:
    """Back-office search (any staff role): players whose email starts with `q` (case-insensitive)
    or whose id is `q`, filtered by KYC state; oldest KYC submissions and registrations first."""
    found = await accounts.search(ctx, q, kyc_state, limit, offset)
    return [summary_of(p) for p in found]


@internal.get("/{player_id}", response_model=PlayerSummary, responses=NOT_FOUND)
async def player_summary(player_id: uuid.UUID, _caller: str = Depends(callers("sessions", "payments", "backoffice")),
                         ctx: PlayersContext = Depends(players_context)) -> PlayerSummary:
    return summary_of(await accounts.get_player(ctx, player_id))


def summary_of(p: Player) -> PlayerSummary:
    return PlayerSummary(player_id=p.id, email=p.email, country=p.country, currency=p.currency,
                         date_of_birth=p.date_of_birth, kyc_state=p.kyc_state,  # type: ignore[arg-type]
                         registered_at=p.registered_at)


@internal.get("/{player_id}/eligibility", response_model=Eligibility, responses=NOT_FOUND)
async def eligibility(player_id: uuid.UUID, _caller: str = Depends(callers("sessions")),
                      ctx: PlayersContext = Depends(players_context)) -> Eligibility:
    return await safeguards.eligibility(ctx, player_id)


@internal.get("/{player_id}/protection", response_model=ProtectionView, responses=NOT_FOUND)
async def protection(player_id: uuid.UUID, _caller: str = Depends(callers("backoffice")),
                     ctx: PlayersContext = Depends(players_context)) -> ProtectionView:
    return await safeguards.read_protection(ctx, player_id)


@internal.post("/{player_id}/kyc/decision", response_model=KycOut,
               responses=refusals(e.PLAYER_NOT_FOUND, e.INVALID_KYC_TRANSITION))
async def decide_kyc(player_id: uuid.UUID, body: KycDecision, _caller: str = Depends(callers("backoffice")),
                     who: StaffContext = Depends(staff("risk", "admin")),
                     ctx: PlayersContext = Depends(players_context)) -> KycOut:
    """A back-office decision: staff roles risk or admin (support may look, not decide); audited."""
    return await accounts.decide_kyc(ctx, player_id, body, Actor.of(who))


@internal.get("/{player_id}/notes", response_model=list[NoteView], responses=NOT_FOUND)
async def list_notes(player_id: uuid.UUID, _caller: str = Depends(callers("backoffice")),
                     _who: StaffContext = Depends(staff("support", "risk", "finance", "admin")),
                     limit: int = Query(50, ge=1, le=500),
                     ctx: PlayersContext = Depends(players_context)) -> list[NoteView]:
    """Staff notes on the player, newest first (any staff role)."""
    return [NoteView.model_validate(n, from_attributes=True) for n in await accounts.notes(ctx, player_id, limit)]


@internal.post("/{player_id}/notes", status_code=201, response_model=NoteView, responses=NOT_FOUND)
async def add_note(player_id: uuid.UUID, body: NoteCreate, _caller: str = Depends(callers("backoffice")),
                   who: StaffContext = Depends(staff("support", "risk", "finance", "admin")),
                   ctx: PlayersContext = Depends(players_context)) -> NoteView:
    """A staff note (any staff role); never edited, audited as `players.note_added`."""
    note = await accounts.add_note(ctx, player_id, body.text, Actor.of(who))
    return NoteView.model_validate(note, from_attributes=True)


keys = APIRouter(tags=["keys"])


@keys.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """Players' public keys (RFC 7517): what the gateway checks player access tokens against.
    The signing key and, during a rotation, the other keys of players that are still trusted."""
    keys: KeySet = request.app.state.runtime.trusted_keys  # its own key included (kit.app.Runtime)
    return keys.owned_by("players").jwks()


routers = (public, me, internal, keys)
