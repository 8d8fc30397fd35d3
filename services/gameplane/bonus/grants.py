"""Grants in bonus's database: made from an offer version, moved through the state machine,
their wagering progress. Wallet calls are never made here (they happen after the commit, in
gameplane.bonus.worker): a transition that owes the wallet a call records it in `pending`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.bonus import metrics, states, wagering
from gameplane.bonus.rules import PlayerFacts
from gameplane.contracts import bonus as c
from gameplane.kit.outbox import publish

PRODUCER = "bonus"
Clock = Callable[[], datetime]

_GRANT_COLUMNS = (
    "grant_id, player_id, offer_id, offer_version, kind, currency, amount, deposit_amount, wagering_multiplier, "
    "wagering_required, wagered, contributions, state, max_stake, cashout_cap, priority, forfeit_on_withdrawal, "
    "spins, spins_played, game_id, spin_stake, expires_at, created_at, closed_at, converted, reason, source, "
    "pending, wallet_granted")


async def terms_of(s: AsyncSession, offer_id: uuid.UUID, version: int) -> c.OfferTerms:
    doc = (await s.execute(text("SELECT terms FROM offer_versions WHERE offer_id = :o AND version = :v"),
                           {"o": offer_id, "v": version})).scalar_one_or_none()
    if doc is None:
        raise c.OFFER_NOT_FOUND(f"offer {offer_id} has no version {version}")
    return c.OfferTerms.model_validate(doc)


async def live_offer(s: AsyncSession, offer_id: uuid.UUID) -> tuple[int, c.OfferTerms]:
    row = (await s.execute(text("SELECT state, live_version FROM offers WHERE offer_id = :o"),
                           {"o": offer_id})).one_or_none()
    if row is None:
        raise c.OFFER_NOT_FOUND(f"no offer {offer_id}")
    if row.state != "live" or row.live_version is None:
        raise c.OFFER_NOT_LIVE(f"offer {offer_id} is {row.state}", state=row.state)
    return int(row.live_version), await terms_of(s, offer_id, int(row.live_version))


async def facts(s: AsyncSession, player_id: uuid.UUID, offer_id: uuid.UUID | None = None) -> PlayerFacts:
    row = (await s.execute(text(
        "SELECT country, segments, self_excluded_until, timeout_until, registered_at, "
        "EXISTS (SELECT 1 FROM grants WHERE player_id = :p AND offer_id = :o) AS granted "
        "FROM players WHERE player_id = :p"), {"p": player_id, "o": offer_id})).one_or_none()
    if row is None:
        return PlayerFacts(known=False)
    return PlayerFacts(known=row.registered_at is not None, country=row.country, segments=tuple(row.segments or ()),
                       self_excluded_until=row.self_excluded_until, timeout_until=row.timeout_until,
                       already_granted=bool(row.granted))


async def create(s: AsyncSession, *, player_id: uuid.UUID, offer_id: uuid.UUID, version: int, terms: c.OfferTerms,
                 amount: int, deposit: int, source: str, now: datetime) -> dict[str, Any] | None:
    """Make a grant (state issued, the wallet call owed). None when the player has one of this
    offer already (one per player per offer; a replayed event lands here)."""
    grant_id = uuid.uuid4()
    required = wagering.requirement(terms.wagering_multiplier, amount, deposit, terms.wagering_base)
    row = (await s.execute(text(
        f"INSERT INTO grants ({_GRANT_COLUMNS}) VALUES (:g, :p, :o, :v, :kind, :cur, :amount, :deposit, :mult, "
        ":required, 0, CAST(:contrib AS jsonb), 'issued', :max_stake, :cap, :priority, :fow, :spins, 0, :game, "
        ":spin_stake, :expires, :now, NULL, NULL, NULL, :source, 'grant', false) "
        f"ON CONFLICT (player_id, offer_id) DO NOTHING RETURNING {_GRANT_COLUMNS}"),
        {"g": grant_id, "p": player_id, "o": offer_id, "v": version, "kind": terms.kind, "cur": terms.currency,
         "amount": amount, "deposit": deposit, "mult": terms.wagering_multiplier, "required": required,
         "contrib": json.dumps(wagering.contributions(terms.contributions)), "max_stake": terms.max_stake,
         "cap": terms.cashout_cap, "priority": terms.priority, "fow": terms.forfeit_on_withdrawal,
         "spins": terms.spins, "game": terms.game_id, "spin_stake": terms.spin_stake,
         "expires": now + timedelta(days=terms.expiry_days), "now": now, "source": source})).mappings().first()
    if row is None:
        return None
    await publish(s, c.Granted(grant_id=grant_id, player_id=player_id, offer_id=offer_id, currency=terms.currency,
                               at=now, offer_version=version, kind=terms.kind, amount=amount,
                               wagering_required=required), producer=PRODUCER)
    metrics.GRANTS.labels(terms.kind, source).inc()
    return dict(row)


async def lock(s: AsyncSession, grant_id: uuid.UUID, *, skip_locked: bool = False) -> dict[str, Any] | None:
    tail = " SKIP LOCKED" if skip_locked else ""
    row = (await s.execute(text(f"SELECT {_GRANT_COLUMNS} FROM grants WHERE grant_id = :g FOR UPDATE{tail}"),
                           {"g": grant_id})).mappings().first()
    return dict(row) if row else None


async def get(s: AsyncSession, grant_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await s.execute(text(f"SELECT {_GRANT_COLUMNS} FROM grants WHERE grant_id = :g"),
                           {"g": grant_id})).mappings().first()
    return dict(row) if row else None


async def of_player(s: AsyncSession, player_id: uuid.UUID, state: str | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    rows = (await s.execute(text(
        f"SELECT {_GRANT_COLUMNS} FROM grants WHERE player_id = :p AND (CAST(:st AS text) IS NULL OR state = :st) "
        "ORDER BY created_at DESC, grant_id LIMIT :n"), {"p": player_id, "st": state, "n": limit})).mappings().all()
    return [dict(r) for r in rows]


def view(row: dict[str, Any]) -> c.GrantView:
    required, wagered = int(row["wagering_required"]), int(row["wagered"])
    return c.GrantView(
        grant_id=row["grant_id"], player_id=row["player_id"], offer_id=row["offer_id"],
        offer_version=row["offer_version"], kind=row["kind"], currency=row["currency"], amount=row["amount"],
        state=row["state"], progress=c.Progress(required=required, wagered=min(wagered, required) if required else
                                                wagered, remaining=max(required - wagered, 0)),
        max_stake=row["max_stake"], cashout_cap=row["cashout_cap"], expires_at=row["expires_at"],
        created_at=row["created_at"], closed_at=row["closed_at"], converted=row["converted"], reason=row["reason"],
        wallet_pending=row["pending"])


async def close(s: AsyncSession, row: dict[str, Any], target: c.GrantState, reason: str, now: datetime, *,
                actor: str | None = None) -> dict[str, Any]:
    """End an open grant without conversion (expired, cancelled, forfeited): the grant is closed at
    once for bonus, and forfeiting what is left of its money is owed to the wallet."""
    states.transition(row["state"], target)
    updated = (await s.execute(text(
        f"UPDATE grants SET state = :st, reason = :r, closed_at = :now, pending = 'forfeit' WHERE grant_id = :g "
        f"RETURNING {_GRANT_COLUMNS}"), {"st": target, "r": reason, "now": now, "g": row["grant_id"]})).mappings().one()
    common = {"grant_id": row["grant_id"], "player_id": row["player_id"], "offer_id": row["offer_id"],
              "currency": row["currency"], "at": now}
    event: c._GrantEvent
    if target == "expired":
        event = c.Expired(**common)
    elif target == "cancelled":
        event = c.Cancelled(**common, reason=reason, actor=actor or "system")
    else:
        event = c.Forfeited(**common, reason=reason)
    await publish(s, event, producer=PRODUCER)
    metrics.FORFEITS.labels(reason if target == "forfeited" else target).inc()
    return dict(updated)


async def complete(s: AsyncSession, row: dict[str, Any], now: datetime) -> None:
    """Requirement met: conversion is owed to the wallet (the worker makes it)."""
    await s.execute(text("UPDATE grants SET state = 'completed', pending = 'convert' WHERE grant_id = :g"),
                    {"g": row["grant_id"]})
    await publish(s, c.Completed(grant_id=row["grant_id"], player_id=row["player_id"], offer_id=row["offer_id"],
                                 currency=row["currency"], at=now, wagered=int(row["wagered"])), producer=PRODUCER)


async def progress(s: AsyncSession, row: dict[str, Any], now: datetime) -> None:
    """After `row`'s wagered/spins changed (already written): complete it or mark it wagering."""
    target = states.after_progress(row["state"], int(row["wagering_required"]), int(row["wagered"]),
                                   row["spins"], int(row["spins_played"]))
    if target == "completed":
        await complete(s, row, now)
    elif target != row["state"]:
        await s.execute(text("UPDATE grants SET state = :st WHERE grant_id = :g"),
                        {"st": target, "g": row["grant_id"]})
