"""The RGS simulator: a third-party game studio running Fruit Fives against the platform.

GET  /launch?token=...&game=...     open the player's table (authenticates the token with the platform)
POST /sessions/{token}/spins        play N rounds: {"count": 200, "stake": 100}
GET  /sessions/{token}              the table: balance and rounds
GET  /games                         the studio's games with their stated RTP
"""

from __future__ import annotations

import hashlib
import random

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field

from gameplane.kit.app import Runtime, create_app
from gameplane.kit.problems import Problem
from gameplane.simulators.rgs import slot
from gameplane.simulators.rgs.client import PlatformClient, Refused, Unanswered
from gameplane.simulators.rgs.play import Table, play_round, settle_pending
from gameplane.simulators.rgs.settings import RgsSettings

router = APIRouter(tags=["rgs"])


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


@router.get("/launch")
async def launch(request: Request, token: str = Query(min_length=1), game: str = Query(default=slot.GAME_ID)) -> dict:
    rt = _rt(request)
    if game != slot.GAME_ID:
        raise Problem(404, "game-not-found", "This studio has no such game", game)
    try:
        ans = await _client(rt).call("authenticate", {"token": token})
    except Refused as exc:
        raise Problem(403, "launch-refused", "The platform refused the token", str(exc), code=exc.code)
    except Unanswered as exc:
        raise Problem(503, "platform-unavailable", "The platform did not answer", str(exc))
    tables: dict[str, Table] = rt.state.setdefault("tables", {})
    tables[token] = Table(token=token, player_id=str(ans.player_id), currency=ans.currency,
                          game_id=ans.game_id or game, balance=ans.balance, rng=_rng(rt.settings, token))  # type: ignore[arg-type]
    return {"token": token, "player_id": str(ans.player_id), "currency": ans.currency, "balance": ans.balance,
            "game_id": ans.game_id or game}


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
    for _ in range(body.count):
        rec = await play_round(client, table, body.stake)
        if rec.status == "refused":
            stopped = rec.error
            break
    played = table.rounds[start:]
    out: dict[str, object] = {
        "token": token, "requested": body.count, "played": len(played),
        "settled": sum(r.status == "settled" for r in played),
        "rolled_back": sum(r.status == "rolled_back" for r in played),
        "refused": sum(r.status == "refused" for r in played),
        "pending": len(table.pending()),
        "staked": sum(r.stake for r in played if r.status in ("settled", "win_pending")),
        "won": sum(r.win for r in played if r.status == "settled"),
        "balance": table.balance, "currency": table.currency, "stopped": stopped,
    }
    if body.include_rounds:
        out["rounds"] = [r.as_dict() for r in played]
    return out


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

    # A third party: it signs provider calls with its provider secret and holds no service identity.
    runtime = Runtime("rgs", settings, publishes=False, on_stop=[close_client], identity=False)
    return create_app(runtime, [router], title="gameplane RGS simulator",
                      description="A third-party game studio: Fruit Fives on the seamless-wallet API.")
