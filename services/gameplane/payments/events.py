"""What payments consumes: KYC decisions (release AML-held withdrawals) and risk case decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.players import KycChanged
from gameplane.contracts.risk import CaseDecided
from gameplane.kit.consumer import Consumers
from gameplane.kit.events import Envelope
from gameplane.payments.flows import release_kyc_held
from gameplane.payments.models import payments

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
