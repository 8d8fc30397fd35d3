"""Calls to the wallet (grant, convert, forfeit: money moves only there) and to games (a game's
category, cached; free-spin awards). Each answer is read in bonus's own terms; a dependency that
cannot answer raises DependencyError, and the caller leaves the call owed (the worker retries)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gameplane.contracts import games as g
from gameplane.contracts import wallet as w
from gameplane.kit.app import Runtime
from gameplane.kit.http import DependencyError, ServiceResponse

log = logging.getLogger("gameplane.bonus")


class Refused(Exception):
    """The dependency answered with a refusal we cannot retry past (a 4xx other than the expected)."""

    def __init__(self, target: str, status: int, slug: str, body: str) -> None:
        super().__init__(f"{target} refused ({status} {slug}): {body[:300]}")
        self.status = status
        self.slug = slug


def slug(r: ServiceResponse) -> str:
    try:
        return str(r.json().get("type", "")).rsplit("/", 1)[-1]
    except (ValueError, AttributeError):
        return ""


def _check(target: str, r: ServiceResponse) -> None:
    if r.status_code >= 500:
        raise DependencyError(target, f"answered {r.status_code}")
    if r.status_code >= 400:
        raise Refused(target, r.status_code, slug(r), r.text)


@dataclass(frozen=True)
class Settled:
    amount: int  # what left the grant's bonus balance
    cash: int  # what reached cash (convert)


async def _wallet(rt: Runtime, path: str, body: dict[str, Any]) -> ServiceResponse:
    # every call carries an idempotency key derived from the grant: safe to retry
    return await rt.client("wallet", timeout=5.0).post(path, json=body, idempotent=True)


async def wallet_grant(rt: Runtime, grant_id: uuid.UUID, player_id: uuid.UUID, currency: str, amount: int,
                       max_stake: int | None, priority: int) -> None:
    body = w.BonusGrantRequest(idempotency_key=f"bonus-grant:{grant_id}", grant_id=str(grant_id),
                               player_id=player_id, currency=currency, amount=amount, max_stake=max_stake,
                               priority=priority)
    r = await _wallet(rt, w.PATH_BONUSES, body.model_dump(mode="json", exclude_none=True))
    if r.status_code == 409 and slug(r) == w.GRANT_EXISTS.slug:
        return  # made by an earlier attempt whose answer was lost
    _check("wallet", r)


async def wallet_settle(rt: Runtime, grant_id: uuid.UUID, *, convert: bool, reason: str,
                        cap: int | None = None) -> Settled | None:
    """Convert (up to `cap`) or forfeit one grant. None: the wallet had closed it already."""
    verb = "convert" if convert else "forfeit"
    body = w.BonusSettleRequest(idempotency_key=f"bonus-{verb}:{grant_id}", amount=cap if convert else None,
                                reason=reason)  # type: ignore[arg-type]
    path = (w.PATH_BONUS_CONVERT if convert else w.PATH_BONUS_FORFEIT).format(grant_id=grant_id)
    r = await _wallet(rt, path, body.model_dump(mode="json", exclude_none=True))
    if r.status_code in (404, 409) and slug(r) in (w.GRANT_CLOSED.slug, w.GRANT_NOT_FOUND.slug):
        return None
    _check("wallet", r)
    result = r.model(w.OperationResult)
    cash = result.split.cash if result.split is not None else (result.amount if convert else 0)
    return Settled(amount=result.amount, cash=cash if convert else 0)


class GameCategories:
    """The category of each game (games' catalogue), kept for `ttl` seconds: wagering needs it
    for every settled bet, and it changes rarely."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[str | None, float]] = {}

    def remember(self, game_id: str, category: str | None) -> None:
        self._known[game_id] = (category, time.monotonic() + self.ttl)

    async def category(self, rt: Runtime, game_id: str) -> str | None:
        """None: games knows no such game (it then contributes nothing)."""
        hit = self._known.get(game_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        r = await rt.client("games").get(g.PATH_GAME.format(game_id=game_id))
        if r.status_code == 404:
            self.remember(game_id, None)
            return None
        _check("games", r)
        category = str(r.json()["category"])
        self.remember(game_id, category)
        return category


async def award_free_spins(rt: Runtime, grant_id: uuid.UUID, player_id: uuid.UUID, currency: str, game_id: str,
                           spins: int, stake: int, expires_at: datetime) -> None:
    """Ask games to award the spins at the game's provider (idempotent on award_id = the grant id)."""
    award = g.FreeSpinAward(award_id=str(grant_id), grant_id=str(grant_id), player_id=player_id, currency=currency,
                            game_id=game_id, spins=spins, stake=stake, expires_at=expires_at)
    r = await rt.client("games", timeout=10.0).post(g.PATH_FREE_SPINS, json=award.model_dump(mode="json"),
                                                   idempotent=True)
    _check("games", r)
