"""The RGS simulator: a third-party game studio running Fruit Fives against the platform.

GET  /launch?token=...&game=...     open the player's table (authenticates the token with the platform)
GET  /play?token=...&game=...&parent=...  the same, as the playable page (HTML) a player site frames
POST /sessions/{token}/spins        play N rounds: {"count": 200, "stake": 100}
GET  /sessions/{token}              the table: balance and rounds
GET  /games                         the studio's games with their stated RTP
POST /free-spins                    the studio's award API: free spins the platform grants a player
                                    (signed by the platform with our provider key; played on the next spins)
GET  /free-spins/{award_id}         what became of an award here
"""

from __future__ import annotations

import hashlib
import random

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError

from gameplane.contracts.games import PROVIDER_AWARD_PATH, ProviderFreeSpinAward
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.pages import SecurityHeaders
from gameplane.kit.problems import Problem, ProblemType
from gameplane.simulators.rgs import awards, page, slot
from gameplane.simulators.rgs.client import PlatformClient, Refused, Unanswered
from gameplane.simulators.rgs.play import Table, play_free_spin, play_round, settle_pending
from gameplane.simulators.rgs.settings import RgsSettings

router = APIRouter(tags=["rgs"])

GAME_NOT_FOUND = ProblemType(404, "game-not-found", "This studio has no such game")
LAUNCH_REFUSED = ProblemType(403, "launch-refused", "The platform refused the token")
PLATFORM_UNAVAILABLE = ProblemType(503, "platform-unavailable", "The platform did not answer")


class SpinRequest(BaseModel):
    count: int = Field(default=1, ge=1)
    stake: int = Field(default=100, gt=0, description="minor units; must split over the 10 lines")
    include_rounds: bool = False


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _client(rt: Runtime) -> PlatformClient:
    client = rt.state.get("client")
    if client is None:
        s: RgsSettings = rt.settings  # type: ignore[assignment]
        client = PlatformClient(s.platform(), s.provider, s.secret(), timeout=s.request_timeout_seconds,
                                attempts=s.attempts, backoff=s.retry_backoff_seconds,
                                transport=rt.state.get("transport"))
        rt.state["client"] = client
    return client  # type: ignore[no-any-return]


def _rng(settings: RgsSettings, token: str) -> random.Random:
    if settings.seed is None:
        return random.Random()
    digest = hashlib.sha256(f"{settings.seed}:{token}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@router.get("/games")
async def games() -> list[dict[str, object]]:
    rtp = slot.exact_rtp()
    return [{"game_id": slot.GAME_ID, "title": slot.TITLE, "reels": len(slot.REELS), "rows": slot.ROWS,
             "lines": len(slot.LINES), "rtp_bp": slot.rtp_basis_points(), "rtp": f"{float(rtp):.6f}"}]


async def _open_table(rt: Runtime, token: str, game: str) -> Table:
    """Authenticate the token with the platform and open its table. A table already open for it
    (the page reloaded) keeps its rounds — a win still owed among them — and takes the new balance."""
    if game != slot.GAME_ID:
        raise GAME_NOT_FOUND(game)
    try:
        ans = await _client(rt).call("authenticate", {"token": token})
    except Refused as exc:
        raise LAUNCH_REFUSED(str(exc), code=exc.code)
    except Unanswered as exc:
        raise PLATFORM_UNAVAILABLE(str(exc))
    tables: dict[str, Table] = rt.state.setdefault("tables", {})
    table = tables.get(token)
    if table is not None and table.player_id == str(ans.player_id):
        table.balance = ans.balance
        return table
    tables[token] = Table(token=token, player_id=str(ans.player_id), currency=ans.currency,
                          game_id=ans.game_id or game, balance=ans.balance, rng=_rng(rt.settings, token))  # type: ignore[arg-type]
    return tables[token]


@router.get("/launch")
async def launch(request: Request, token: str = Query(min_length=1), game: str = Query(default=slot.GAME_ID)) -> dict:
    table = await _open_table(_rt(request), token, game)
    return {"token": token, "player_id": table.player_id, "currency": table.currency, "balance": table.balance,
            "game_id": table.game_id}


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return page.templates.TemplateResponse(request, "error.html", {"title": title, "message": message},
                                           status_code=status)


@router.get("/play", response_class=HTMLResponse)
async def play_page(request: Request, token: str = Query(default=""), game: str = Query(default=slot.GAME_ID),
                    parent: str | None = Query(default=None, description="origin of the framing site: "
                                               "round messages go there; one of the allowed parents")) -> HTMLResponse:
    """The playable slot: reels, stake, spin, balance, free spins. Refusals are pages, not JSON."""
    rt = _rt(request)
    target = None
    if parent:
        target = page.origin(parent)
        if target is None or target not in rt.state["allowed_parents"]:
            return _error_page(request, 403, "This site may not show the game",
                               "This game can only be played from the casino's own site.")
    if not token:
        return _error_page(request, 404, "No such game session", "Open the game again from the lobby.")
    try:
        table = await _open_table(rt, token, game)
    except Problem as exc:
        code = exc.extensions.get("code")
        if exc.status == 404 or code == "invalid-token":
            return _error_page(request, 404, "No such game session",
                               "The casino does not know this game session. Open the game again from the lobby.")
        if exc.status == 403:
            return _error_page(request, 403, "This game session has ended", page.refusal_words(code))
        return _error_page(request, 503, "The game cannot start right now",
                           "The casino did not answer. Try again shortly.")
    held: dict[str, awards.HeldAward] = rt.state.setdefault("awards", {})
    stakes = slot.STAKES
    return page.templates.TemplateResponse(request, "play.html", {
        "title": slot.TITLE, "token": token, "parent": target or "", "currency": table.currency,
        "balance": table.balance, "balance_text": page.money(table.balance, table.currency),
        "stakes": [(s, page.money(s, table.currency)) for s in stakes],
        "stake": page.DEFAULT_STAKE if page.DEFAULT_STAKE in stakes else stakes[0],
        "free_spins": awards.spins_left(held, table.player_id, table.game_id, table.currency),
        "reels": _last_window(table), "names": slot.SYMBOL_NAMES, "message_type": page.ROUND_MESSAGE,
    })


def _last_window(table: Table) -> list[str]:
    shown = next((r.stops for r in reversed(table.rounds) if r.stops), None)
    return slot.window(shown or (0,) * len(slot.REELS))


def _table(request: Request, token: str) -> Table:
    table = _rt(request).state.get("tables", {}).get(token)
    if table is None:
        raise Problem(404, "table-not-found", "No table for this token", "open it with /launch first")
    return table  # type: ignore[no-any-return]


@router.post("/sessions/{token}/spins")
async def spins(token: str, body: SpinRequest, request: Request) -> dict:
    rt = _rt(request)
    settings: RgsSettings = rt.settings  # type: ignore[assignment]
    if body.count > settings.max_spins_per_call:
        raise Problem(422, "too-many-spins", "Too many spins in one call", f"at most {settings.max_spins_per_call}")
    if body.stake % len(slot.LINES):
        raise Problem(422, "invalid-stake", "Stake must split over the lines", f"a multiple of {len(slot.LINES)}")
    table = _table(request, token)
    client = _client(rt)
    await settle_pending(client, table)
    start = len(table.rounds)
    stopped: str | None = None
    stopped_code: str | None = None
    held: dict[str, awards.HeldAward] = rt.state.setdefault("awards", {})
    for _ in range(body.count):
        award = awards.next_award(held, table.player_id, table.game_id, table.currency)
        if award is not None:
            award.played += 1
            rec = await play_free_spin(client, table, award.award.award_id, award.award.stake)
            if rec.status == "refused" and rec.error_code in awards.SPENT_CODES:
                award.spent = True
            continue
        rec = await play_round(client, table, body.stake)
        if rec.status == "refused":
            stopped, stopped_code = rec.error, rec.error_code
            break
    played = table.rounds[start:]
    paid = [r for r in played if r.award_id is None]
    free = [r for r in played if r.award_id is not None]
    out: dict[str, object] = {
        "token": token, "requested": body.count, "played": len(played),
        "settled": sum(r.status == "settled" for r in played),
        "rolled_back": sum(r.status == "rolled_back" for r in played),
        "refused": sum(r.status == "refused" for r in played),
        "pending": len(table.pending()),
        "staked": sum(r.stake for r in paid if r.status in ("settled", "win_pending")),
        "won": sum(r.win for r in paid if r.status == "settled"),
        "free_spins": len(free), "free_spins_won": sum(r.win for r in free if r.status == "settled"),
        "free_spins_refused": sum(r.status == "refused" for r in free),
        "balance": table.balance, "currency": table.currency, "stopped": stopped,
        # for the play page: the refusal's code, in words, and whether the session can play on
        "stopped_code": stopped_code, "stopped_reason": page.refusal_words(stopped_code) if stopped else None,
        "session_ended": stopped_code in page.SESSION_ENDED,
        "free_spins_left": awards.spins_left(held, table.player_id, table.game_id, table.currency),
    }
    if body.include_rounds:
        out["rounds"] = [r.as_dict() for r in played]
    return out


@router.post(PROVIDER_AWARD_PATH)
async def award_free_spins(request: Request) -> JSONResponse:
    """The platform grants a player free spins here; the same award again is accepted again, other
    terms under the same id are a 409."""
    rt = _rt(request)
    raw = await request.body()
    refusal = awards.signature_refusal(rt.settings.secret(), "POST", request.url.path, raw,  # type: ignore[attr-defined]
                                       dict(request.headers))
    if refusal:
        raise Problem(401, refusal, "The award is not signed by the platform")
    try:
        award = ProviderFreeSpinAward.model_validate_json(raw)
    except ValidationError as exc:
        raise Problem(422, "validation-error", "Malformed award", str(exc.errors()[:3]))
    held: dict[str, awards.HeldAward] = rt.state.setdefault("awards", {})
    seen = held.get(award.award_id)
    if seen is not None:
        if seen.award != award:
            raise Problem(409, "award-exists", "Another award has this id", award.award_id)
        return JSONResponse(_award_state(seen), status_code=200)
    why = awards.terms_refusal(award)
    if why:
        raise Problem(422, "award-refused", "This studio cannot play the award", why)
    held[award.award_id] = awards.HeldAward(award)
    return JSONResponse(_award_state(held[award.award_id]), status_code=201)


def _award_state(h: awards.HeldAward) -> dict[str, object]:
    return {**h.award.model_dump(mode="json"), "played": h.played, "spent": h.spent}


@router.get(PROVIDER_AWARD_PATH + "/{award_id}")
async def award_state(award_id: str, request: Request) -> dict[str, object]:
    held = _rt(request).state.get("awards", {}).get(award_id)
    if held is None:
        raise Problem(404, "award-not-found", "No such award here", award_id)
    return _award_state(held)


@router.get("/sessions/{token}")
async def table_state(token: str, request: Request) -> dict:
    table = _table(request, token)
    return {"token": token, "player_id": table.player_id, "currency": table.currency, "balance": table.balance,
            "rounds": [r.as_dict() for r in table.rounds[-200:]], "pending": len(table.pending())}


def build_app(settings: RgsSettings | None = None) -> FastAPI:
    settings = settings or RgsSettings()
    settings.secret()  # refuse to start without a key

    async def close_client(rt: Runtime) -> None:
        client = rt.state.pop("client", None)
        if client is not None:
            await client.aclose()

    parents = page.allowed_origins(settings.allowed_parents)
    # A third party: it signs provider calls with its provider secret and holds no service identity.
    runtime = Runtime("rgs", settings, publishes=False, on_stop=[close_client], identity=False)
    runtime.state["allowed_parents"] = parents
    app = create_app(runtime, [router], title="gameplane RGS simulator",
                     description="A third-party game studio: Fruit Fives on the seamless-wallet API.")
    app.add_middleware(SecurityHeaders, policy=page.policy(parents))
    app.mount("/static", StaticFiles(packages=[("gameplane.simulators.rgs", "static")]), name="static")
    return app
