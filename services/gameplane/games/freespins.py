"""Free-spin awards: bonus grants spins, games forwards them to the game's provider (signed with the
provider's key, platform -> provider), and counts each spin when the provider reports its win.

An award is recorded before it is forwarded and marked `accepted` once the provider took it, so a
repeated POST (bonus retrying after a timeout) forwards it again: the provider's award API is
idempotent on award_id as ours is. A spin is held (spins_played + 1, guarded by the award's row, and
a row per provider transaction in free_spin_plays) before the wallet credits its win, and given
back only when the wallet refuses it for good: concurrent wins never play more spins than
awarded, and a retried win (its answer lost, or its record failed after the credit) finds its
spin held instead of taking another.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from gameplane.contracts.games import (
    AWARD_EXISTS,
    AWARD_INVALID,
    AWARD_REFUSED,
    AWARD_UNSUPPORTED,
    PROVIDER_AWARD_PATH,
    PROVIDER_UNAVAILABLE,
    FreeSpinAward,
    FreeSpinAwardView,
    GameView,
    ProviderFreeSpinAward,
    signed_headers,
)
from gameplane.games import rules
from gameplane.games.settings import ProviderSettings
from gameplane.kit.db import utcnow

log = logging.getLogger("gameplane.games.freespins")

_COLUMNS = ("award_id, request_hash, grant_id, player_id, currency, game_id, provider, spins, stake, expires_at, "
            "accepted, spins_played, won")

_INSERT = f"""
INSERT INTO free_spin_awards (award_id, request_hash, grant_id, player_id, currency, game_id, provider, spins,
                              stake, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (award_id) DO NOTHING RETURNING {_COLUMNS}
"""
_SELECT = f"SELECT {_COLUMNS} FROM free_spin_awards WHERE award_id = $1"
# The spin's gate: concurrent wins of one award update the same row, each seeing those before it.
_HOLD = """
UPDATE free_spin_awards SET spins_played = spins_played + 1
WHERE award_id = $1 AND accepted AND spins_played < spins AND expires_at > now() RETURNING spins_played
"""
_RELEASE = "UPDATE free_spin_awards SET spins_played = spins_played - 1 WHERE award_id = $1 AND spins_played > 0"
_PLAY = """
INSERT INTO free_spin_plays (provider, transaction_id, award_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING 1
"""
_UNPLAY = "DELETE FROM free_spin_plays WHERE provider = $1 AND transaction_id = $2"


def fingerprint(award: FreeSpinAward) -> str:
    """What makes two awards the same: every field, the expiry as an instant (not as spelled)."""
    fields: dict[str, Any] = award.model_dump(mode="json")
    fields["expires_at"] = award.expires_at.timestamp()
    fields["currency"] = award.currency.upper()
    return rules.fingerprint("free-spin-award", fields)


def state(row: asyncpg.Record | dict[str, Any], now: datetime) -> str:
    if row["spins_played"] >= row["spins"]:
        return "finished"
    return "expired" if now >= row["expires_at"] else "awarded"


def view(row: asyncpg.Record | dict[str, Any], now: datetime | None = None) -> FreeSpinAwardView:
    return FreeSpinAwardView(
        award_id=row["award_id"], grant_id=row["grant_id"], player_id=row["player_id"], currency=row["currency"],
        game_id=row["game_id"], spins=row["spins"], stake=row["stake"], expires_at=row["expires_at"],
        provider=row["provider"], state=state(row, now or utcnow()),  # type: ignore[arg-type]
        spins_played=row["spins_played"], won=row["won"])


async def load(pool: asyncpg.Pool, award_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(_SELECT, award_id)


async def hold_spin(pool: asyncpg.Pool, *, provider: str, transaction_id: str, award_id: str) -> str:
    """Count the spin of this free-spin win now, before the wallet credits it: "held"; "already" when
    this transaction holds it from before (a retry, or a twin in flight: the key's row serialises
    them); "none" when no spin is left, or the award expired or was never accepted."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_PLAY, provider, transaction_id, award_id) is None:
            return "already"
        if await conn.fetchval(_HOLD, award_id) is None:
            await conn.execute(_UNPLAY, provider, transaction_id)
            return "none"
    return "held"


async def holds(pool: asyncpg.Pool, *, provider: str, transaction_id: str) -> bool:
    """Whether this transaction holds a spin from an earlier attempt."""
    return await pool.fetchval("SELECT 1 FROM free_spin_plays WHERE provider = $1 AND transaction_id = $2",
                               provider, transaction_id) is not None


async def release_spin(pool: asyncpg.Pool, *, provider: str, transaction_id: str, award_id: str) -> None:
    """Give back the spin of a win the wallet refused for good (a retry may hold it again)."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.execute(_UNPLAY, provider, transaction_id) != "DELETE 0":
            await conn.execute(_RELEASE, award_id)


def check_award(award: FreeSpinAward, game: GameView, provider: ProviderSettings | None, now: datetime) -> None:
    """Refuse, before anything is stored, an award no provider could honour."""
    if award.expires_at.tzinfo is None:
        raise AWARD_INVALID("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if award.expires_at <= now:
        raise AWARD_INVALID(f"expires_at {award.expires_at.isoformat()} is in the past")
    if provider is None or provider.dialect != "canonical" or not provider.api_url:
        why = "is not configured" if provider is None else \
            "speaks the aggregator dialect, which has no award API" if provider.dialect != "canonical" else \
            "has no api_url (its base URL) configured"
        raise AWARD_UNSUPPORTED(f"provider {game.provider!r} of game {game.game_id!r} {why}")
    stakes = game.stakes.get(award.currency.upper())
    if stakes is not None and not stakes.min <= award.stake <= stakes.max:
        raise AWARD_INVALID(f"stake {award.stake} outside {stakes.min}..{stakes.max} {award.currency.upper()} "
                            f"of game {game.game_id!r}")


async def create(pool: asyncpg.Pool, http: httpx.AsyncClient, award: FreeSpinAward, game: GameView,
                 provider: ProviderSettings) -> FreeSpinAwardView:
    """Record the award (or find the same one), forward it until the provider accepted it, answer its view."""
    digest = fingerprint(award)
    row = await pool.fetchrow(_INSERT, award.award_id, digest, award.grant_id, award.player_id,
                              award.currency.upper(), award.game_id, game.provider, award.spins, award.stake,
                              award.expires_at)
    if row is None:
        row = await load(pool, award.award_id)
        assert row is not None  # awards are never deleted once accepted; a refused one is gone before this
        if row["request_hash"] != digest:
            raise AWARD_EXISTS(f"award {award.award_id!r} was granted with other terms")
        if row["accepted"]:
            return view(row)
    await forward(http, award, provider, pool)
    row = await pool.fetchrow(f"UPDATE free_spin_awards SET accepted = true WHERE award_id = $1 RETURNING {_COLUMNS}",
                              award.award_id)
    assert row is not None
    return view(row)


async def forward(http: httpx.AsyncClient, award: FreeSpinAward, provider: ProviderSettings,
                  pool: asyncpg.Pool) -> None:
    assert provider.api_url and provider.secret
    url = provider.api_url.rstrip("/") + PROVIDER_AWARD_PATH
    body = ProviderFreeSpinAward(
        award_id=award.award_id, player_id=award.player_id, currency=award.currency.upper(), game_id=award.game_id,
        spins=award.spins, stake=award.stake, expires_at=award.expires_at).model_dump_json().encode()
    headers = {"content-type": "application/json",
               **signed_headers(provider.secret, urlsplit(url).path or "/", body)}
    try:
        resp = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise PROVIDER_UNAVAILABLE(f"{url}: {exc.__class__.__name__}")
    if resp.status_code in (200, 201):
        return
    if resp.status_code >= 500 or resp.status_code == 429:
        raise PROVIDER_UNAVAILABLE(f"{url} answered {resp.status_code}")
    # A definitive refusal: the id is free again, so the grant may be awarded on corrected terms.
    await pool.execute("DELETE FROM free_spin_awards WHERE award_id = $1 AND NOT accepted", award.award_id)
    try:
        detail = json.loads(resp.content).get("detail")
    except (ValueError, AttributeError):
        detail = None
    raise AWARD_REFUSED(f"{url} answered {resp.status_code}: {detail or resp.text[:200]}",
                        provider_status=resp.status_code)
