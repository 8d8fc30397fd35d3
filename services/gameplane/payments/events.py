"""What payments consumes: KYC decisions (release AML-held withdrawals) and risk case decisions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import KycChanged
from gameplane.kit.consumer import Consumers
from gameplane.kit.events import Envelope, Event
from gameplane.payments.flows import release_kyc_held
from gameplane.payments.models import payments

try:  # the risk helper's contracts (issue 14); the seam's fields until they are merged
    from gameplane.contracts.risk import CaseDecided  # type: ignore[import-not-found,attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - replaced on merge
    class CaseDecided(Event):  # type: ignore[no-redef]
        event_type = "risk.case_decided"
        case_id: uuid.UUID
        reference: str
        kind: str
        player_id: uuid.UUID
        outcome: Literal["approve", "reject"]
        decided_by: str
        reason: str | None = None

consumers = Consumers()


@consumers.on(KycChanged)
async def on_kyc(s: AsyncSession, event: KycChanged, env: Envelope) -> None:
    if event.state == "verified":
        await release_kyc_held(s, event.player_id, datetime.now(UTC))


@consumers.on(CaseDecided)
async def on_case(s: AsyncSession, event: CaseDecided, env: Envelope) -> None:
    """A reviewed withdrawal: approve -> the sweeper pays it out; reject -> the sweeper voids the hold."""
    if event.kind != "withdrawal":
        return
    now = datetime.now(UTC)
    where = and_(payments.c.reference == event.reference, payments.c.kind == "withdrawal",
                 payments.c.state == "review")
    row = (await s.execute(select(payments.c.id).where(where).with_for_update())).first()
    if row is None:
        return  # decided meanwhile by staff, or cancelled by the player
    if event.outcome == "approve":
        await s.execute(update(payments).where(payments.c.id == row[0]).values(
            state="approved", held_reason=None, updated_at=now))
    else:
        await s.execute(update(payments).where(payments.c.id == row[0]).values(
            state="rejected", wallet_pending="void", held_reason=f"rejected by review: {event.reason or 'no reason'}",
            updated_at=now))
