"""What the wallet consumes. (What it publishes is in gameplane.contracts.wallet, via the outbox.)"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import ProtectionChanged
from gameplane.kit.consumer import Consumers
from gameplane.kit.events import Envelope

consumers = Consumers()

_UPSERT = text(
    "INSERT INTO protection (player_id, revision, currency, limits, timeout_until, self_excluded_until, updated_at) "
    "VALUES (:p, :rev, :c, CAST(:limits AS jsonb), :timeout, :excluded, now()) "
    "ON CONFLICT (player_id) DO UPDATE SET revision = EXCLUDED.revision, currency = EXCLUDED.currency, "
    "limits = EXCLUDED.limits, timeout_until = EXCLUDED.timeout_until, "
    "self_excluded_until = EXCLUDED.self_excluded_until, updated_at = now() "
    # snapshots can arrive out of order: only a newer revision replaces what we hold
    "WHERE protection.revision < EXCLUDED.revision")


async def store_protection(session: AsyncSession, event: ProtectionChanged) -> None:
    await session.execute(_UPSERT, {
        "p": event.player_id, "rev": event.revision, "c": event.currency,
        "limits": json.dumps([lim.model_dump(mode="json") for lim in event.limits]),
        "timeout": event.timeout_until, "excluded": event.self_excluded_until})


@consumers.on(ProtectionChanged)
async def on_protection_changed(session: AsyncSession, event: ProtectionChanged, envelope: Envelope) -> None:
    await store_protection(session, event)
