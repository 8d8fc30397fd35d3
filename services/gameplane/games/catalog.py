"""Catalog reads and writes (the rows behind /v1/games and /internal/games)."""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.games import GameUpsert, GameView
from gameplane.contracts.jurisdiction import game_allowed
from gameplane.games.models import Game
from gameplane.games.seamless import game_view
from gameplane.kit.db import Database, utcnow


async def upsert(s: AsyncSession, game_id: str, body: GameUpsert) -> GameView:
    values = body.model_dump(mode="json")
    stmt = insert(Game).values(game_id=game_id, updated_at=utcnow(), **values)
    stmt = stmt.on_conflict_do_update(index_elements=[Game.game_id],
                                      set_={**values, "updated_at": stmt.excluded.updated_at})
    await s.execute(stmt)
    row = await s.get(Game, game_id, populate_existing=True)
    assert row is not None
    return game_view(row)


async def listing(s: AsyncSession, *, category: str | None, provider: str | None,
                  jurisdiction: str | None) -> list[GameView]:
    q = select(Game).where(Game.enabled.is_(True)).order_by(Game.title)
    if category:
        q = q.where(Game.category == category)
    if provider:
        q = q.where(Game.provider == provider)
    views = [game_view(r) for r in (await s.scalars(q)).all()]
    return [v for v in views if jurisdiction is None or game_allowed(v.jurisdictions, jurisdiction)]


def bundled() -> list[tuple[str, GameUpsert]]:
    raw = json.loads(resources.files("gameplane.games").joinpath("catalog_seed.json").read_text())
    return [(item.pop("game_id"), GameUpsert.model_validate(item)) for item in raw]


async def seed(db: Database, providers: set[str]) -> int:
    """Insert bundled games that are missing; an operator's later edits are never overwritten. Only
    games of `providers` (those with credentials) are inserted: a game whose provider nobody
    configured would be listed and launched, and every call for it refused."""
    added = 0
    async with db.transaction() as s:
        for game_id, body in bundled():
            if body.provider not in providers:
                continue
            res = await s.execute(insert(Game).values(game_id=game_id, updated_at=utcnow(),
                                                      **body.model_dump(mode="json"))
                                  .on_conflict_do_nothing().returning(Game.game_id))
            added += res.first() is not None
    return added
