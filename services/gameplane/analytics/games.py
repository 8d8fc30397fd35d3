"""The game dimension: provider, category and certified RTP of each game, read from games'
catalogue (`GET /internal/games/{id}`) when a report needs it and kept in the `games` table for
`ttl` seconds. Never on the ingest path: facts carry game and provider from the event."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.games import PATH_GAME
from gameplane.kit.app import Runtime
from gameplane.kit.db import utcnow
from gameplane.kit.http import DependencyError


async def certified_rtp(rt: Runtime, s: AsyncSession, game_id: str, ttl: float) -> float | None:
    """The game's certified RTP as a fraction; None when games knows no such game."""
    row = (await s.execute(text("SELECT rtp_bp, fetched_at FROM games WHERE game_id = :g"), {"g": game_id})).first()
    if row is not None and row.fetched_at > utcnow() - timedelta(seconds=ttl):
        return row.rtp_bp / 10_000
    from urllib.parse import quote

    try:
        client = rt.client("games")
    except LookupError as exc:  # no endpoint configured: games is unavailable, not a server error
        raise DependencyError("games", str(exc)) from exc
    r = await client.get(PATH_GAME.format(game_id=quote(game_id, safe="")))
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        if row is not None:  # a stale value beats none while games cannot answer
            return row.rtp_bp / 10_000
        raise DependencyError("games", f"answered {r.status_code}")
    game = r.json()
    await s.execute(text(
        "INSERT INTO games (game_id, provider, category, rtp_bp, fetched_at) VALUES (:g, :p, :c, :rtp, :at) "
        "ON CONFLICT (game_id) DO UPDATE SET provider = EXCLUDED.provider, category = EXCLUDED.category,"
        " rtp_bp = EXCLUDED.rtp_bp, fetched_at = EXCLUDED.fetched_at"),
        {"g": game_id, "p": game["provider"], "c": game["category"], "rtp": int(game["rtp_bp"]), "at": utcnow()})
    return int(game["rtp_bp"]) / 10_000
