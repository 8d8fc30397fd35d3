"""Routes: players launch and end game sessions through the gateway; games resolves tokens."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy import or_, select

from gameplane.contracts.games import PATH_GAME, RESERVED_GAME_IDS, GameView
from gameplane.contracts.players import PATH_ELIGIBILITY, PATH_PLAYER, Eligibility, PlayerSummary
from gameplane.contracts.sessions import SessionStarted, SessionView
from gameplane.kit.app import Runtime
from gameplane.kit.auth import PlayerContext, callers, player_context
from gameplane.kit.db import utcnow
from gameplane.kit.outbox import publish
from gameplane.kit.problems import Problem, ProblemType
from gameplane.kit.problems import responses as refusals
from gameplane.sessions import logic
from gameplane.sessions.events import PRODUCER, end_session
from gameplane.sessions.models import GameSession, PlayerProtection
from gameplane.sessions.schemas import Launch, LaunchRequest
from gameplane.sessions.settings import SessionsSettings

public = APIRouter(prefix="/v1/sessions", tags=["sessions"])
internal = APIRouter(prefix="/internal/sessions", tags=["internal"])

GAME_NOT_FOUND = ProblemType(404, "game-not-found", "No such game")
SESSION_NOT_FOUND = ProblemType(404, "session-not-found", "No such session")
GAME_UNAVAILABLE = ProblemType(403, "game-unavailable", "Game not available")
PLAYER_UNKNOWN = ProblemType(403, "player-unknown", "Player not known")
SELF_EXCLUDED = ProblemType(403, "self-excluded", "Player is self-excluded")
TIMED_OUT = ProblemType(403, "timed-out", "Player is on a time-out")
PLAYER_BLOCKED = ProblemType(403, "player-blocked", "Player may not play")
SESSION_LIMIT_REACHED = ProblemType(403, "session-limit-reached", "Session-time limit reached")
CURRENCY_REQUIRED = ProblemType(422, "currency-required", "Currency required")
CURRENCY_NOT_SUPPORTED = ProblemType(422, "currency-not-supported", "Currency not supported by this game")
DEPENDENCY_UNAVAILABLE = ProblemType(503, "dependency-unavailable", "A service this one needs is unavailable")
LAUNCH_REFUSALS = (GAME_NOT_FOUND, GAME_UNAVAILABLE, PLAYER_UNKNOWN, SELF_EXCLUDED, TIMED_OUT, PLAYER_BLOCKED,
                   SESSION_LIMIT_REACHED, CURRENCY_REQUIRED, CURRENCY_NOT_SUPPORTED, DEPENDENCY_UNAVAILABLE)

_REASON_SLUGS = {"self-excluded": ("self-excluded", "Player is self-excluded"),
                 "timed-out": ("timed-out", "Player is on a time-out")}


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def view(row: GameSession) -> SessionView:
    return SessionView(session_id=row.id, token=row.token, player_id=row.player_id, game_id=row.game_id,
                       provider=row.provider, currency=row.currency, status=row.status,  # type: ignore[arg-type]
                       started_at=row.started_at, expires_at=row.expires_at, ended_at=row.ended_at,
                       end_reason=row.end_reason)  # type: ignore[arg-type]


async def _game(rt: Runtime, game_id: str) -> GameView:
    if game_id in RESERVED_GAME_IDS:
        raise GAME_NOT_FOUND(f"game {game_id!r} is not in the catalog")
    resp = await rt.client("games").get(PATH_GAME.format(game_id=quote(game_id, safe="")))
    # 422: an id the catalogue refuses outright (a NUL character, say) names no game either.
    if resp.status_code in (404, 422):
        raise GAME_NOT_FOUND(f"game {game_id!r} is not in the catalog")
    if resp.status_code != 200:
        raise Problem(503, "dependency-unavailable", "Service games is unavailable",
                      f"catalog answered {resp.status_code}", dependency="games")
    return GameView.model_validate(resp.json())


async def _protection(rt: Runtime, row: PlayerProtection | None, player_id: uuid.UUID) -> logic.Protection | None:
    """The local copy when players events have arrived; otherwise ask players (fail closed)."""
    if row is not None:
        return logic.Protection(row.timeout_until, row.self_excluded_until, row.session_limit_minutes,
                                row.reality_check_minutes)
    try:
        players = rt.client("players")
    except LookupError:
        raise Problem(503, "dependency-unavailable", "Service players is unavailable",
                      "no endpoint for players and no protection state received yet", dependency="players")
    resp = await players.get(PATH_ELIGIBILITY.format(player_id=player_id))
    if resp.status_code == 404:
        raise Problem(403, "player-unknown", "Player not known", "players has no such player")
    if resp.status_code != 200:
        raise Problem(503, "dependency-unavailable", "Service players is unavailable",
                      f"eligibility answered {resp.status_code}", dependency="players")
    elig = Eligibility.model_validate(resp.json())
    if not elig.can_play:
        reason = elig.reasons[0] if elig.reasons else "blocked"
        slug, title = _REASON_SLUGS.get(reason, ("player-blocked", "Player may not play"))
        raise Problem(403, slug, title, ", ".join(elig.reasons), reasons=list(elig.reasons))
    return logic.Protection(elig.timeout_until, elig.self_excluded_until)


async def _account_currency(rt: Runtime, player_id: uuid.UUID) -> str | None:
    """The player's currency when no players event has told us yet (a launch right after signing up)."""
    try:
        resp = await rt.client("players").get(PATH_PLAYER.format(player_id=player_id))
    except LookupError:
        return None
    if resp.status_code != 200:
        return None
    return PlayerSummary.model_validate(resp.json()).currency


def _launch_url(settings: SessionsSettings, provider: str, token: str, game_id: str) -> str | None:
    base = settings.game_urls.get(provider)
    if base is None:
        try:
            base = settings.endpoint(provider)
        except LookupError:
            return None
    return f"{base.rstrip('/')}{settings.launch_path}?{urlencode({'token': token, 'game': game_id})}"


@public.post("", status_code=201, response_model=Launch, responses=refusals(*LAUNCH_REFUSALS))
async def launch(body: LaunchRequest, request: Request, player: PlayerContext = Depends(player_context)) -> Launch:
    rt = _rt(request)
    settings: SessionsSettings = rt.settings  # type: ignore[assignment]
    game = await _game(rt, body.game_id)
    if not game.available_in(settings.jurisdiction):
        raise Problem(403, "game-unavailable", "Game not available",
                      f"{game.game_id} is not enabled in {settings.jurisdiction}")
    now = utcnow()
    async with rt.database.session() as s:
        row = await s.get(PlayerProtection, player.player_id)
    protection = await _protection(rt, row, player.player_id)
    try:
        logic.check_launch(protection, now)
    except logic.LaunchRefused as exc:
        raise Problem(403, exc.slug, exc.title, exc.detail, **exc.extensions)
    currency = body.currency or (row.currency if row else None) or await _account_currency(rt, player.player_id)
    currency = (currency or "").upper()
    if not currency:
        raise Problem(422, "currency-required", "Currency required", "no account currency known; pass `currency`")
    if game.stakes and currency not in game.stakes:
        raise Problem(422, "currency-not-supported", "Currency not supported by this game",
                      f"{game.game_id} takes {', '.join(sorted(game.stakes))}")
    ttl = timedelta(seconds=settings.session_ttl_seconds)
    if body.ttl_seconds is not None:
        ttl = min(ttl, timedelta(seconds=max(body.ttl_seconds, settings.min_ttl_seconds)))
    brk = timedelta(minutes=settings.session_break_minutes)
    async with rt.database.transaction() as s:
        history = [logic.Played(a, b) for a, b in (await s.execute(
            select(GameSession.started_at, GameSession.ended_at).where(
                GameSession.player_id == player.player_id,
                or_(GameSession.ended_at.is_(None), GameSession.ended_at > now - timedelta(days=1))))).all()]
        try:
            expires_at, capped = logic.session_expiry(now, ttl, protection, history, brk)
        except logic.LaunchRefused as exc:
            raise Problem(403, exc.slug, exc.title, exc.detail, **exc.extensions)
        interval = protection.reality_check_minutes if protection else None
        session = GameSession(
            id=uuid.uuid4(), token=secrets.token_urlsafe(32), player_id=player.player_id, game_id=game.game_id,
            provider=game.provider, currency=currency, status="active", started_at=now, expires_at=expires_at,
            capped_by_limit=capped, reality_check_minutes=interval, reality_checks_sent=0,
            next_reality_check_at=logic.next_reality_check(now, interval, 0))
        s.add(session)
        await publish(s, SessionStarted(session_id=session.id, player_id=session.player_id, game_id=session.game_id,
                                        provider=session.provider, currency=currency, started_at=now,
                                        expires_at=expires_at), producer=PRODUCER)
    return Launch(**view(session).model_dump(), reality_check_minutes=interval,
                  launch_url=_launch_url(settings, game.provider, session.token, game.game_id))


@public.get("", response_model=list[SessionView])
async def my_sessions(request: Request, player: PlayerContext = Depends(player_context)) -> list[SessionView]:
    async with _rt(request).database.session() as s:
        rows = (await s.scalars(select(GameSession).where(GameSession.player_id == player.player_id)
                                .order_by(GameSession.started_at.desc()).limit(50))).all()
    return [view(r) for r in rows]


@public.get("/{session_id}", response_model=SessionView, responses=refusals(SESSION_NOT_FOUND))
async def my_session(session_id: uuid.UUID, request: Request,
                     player: PlayerContext = Depends(player_context)) -> SessionView:
    async with _rt(request).database.session() as s:
        row = await s.get(GameSession, session_id)
    # Another player's session answers like a missing one: no probing of ids.
    if row is None or row.player_id != player.player_id:
        raise SESSION_NOT_FOUND()
    return view(row)


@public.post("/{session_id}/end", response_model=SessionView, responses=refusals(SESSION_NOT_FOUND))
async def end_my_session(session_id: uuid.UUID, request: Request,
                         player: PlayerContext = Depends(player_context)) -> SessionView:
    async with _rt(request).database.transaction() as s:
        row = await s.get(GameSession, session_id, with_for_update=True)
        if row is None or row.player_id != player.player_id:
            raise SESSION_NOT_FOUND()
        if row.status == "active":
            await end_session(s, row, "player", utcnow())
        return view(row)


@internal.get("/{token}", response_model=SessionView, responses=refusals(SESSION_NOT_FOUND))
async def by_token(token: str, request: Request, caller: str = Depends(callers("games"))) -> SessionView:
    async with _rt(request).database.session() as s:
        row = await s.scalar(select(GameSession).where(GameSession.token == token))
    if row is None:
        raise SESSION_NOT_FOUND("no session has this token")
    return view(row)
