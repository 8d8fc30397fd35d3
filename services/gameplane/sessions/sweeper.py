"""Background sweeper: ends expired sessions and emits due reality checks.

Rows are claimed with FOR UPDATE SKIP LOCKED, so several replicas share the work without
sending a reality check twice; the schedule counts from the session start, so a late sweep
sends the check late but does not drift later ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from gameplane.contracts.sessions import RealityCheck
from gameplane.kit.db import Database, utcnow
from gameplane.kit.outbox import publish
from gameplane.sessions import logic
from gameplane.sessions.events import PRODUCER, end_session
from gameplane.sessions.models import GameSession

BATCH = 200


async def sweep_once(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """(sessions expired, reality checks sent)."""
    now = now or utcnow()
    async with db.transaction() as s:
        expired = (await s.scalars(select(GameSession).where(
            GameSession.status == "active", GameSession.expires_at <= now)
            .order_by(GameSession.expires_at).limit(BATCH).with_for_update(skip_locked=True))).all()
        for row in expired:
            await end_session(s, row, "session_limit" if row.capped_by_limit else "expired", row.expires_at)
    async with db.transaction() as s:
        due = (await s.scalars(select(GameSession).where(
            GameSession.status == "active", GameSession.next_reality_check_at <= now)
            .order_by(GameSession.next_reality_check_at).limit(BATCH).with_for_update(skip_locked=True))).all()
        for row in due:
            row.reality_checks_sent += 1
            await publish(s, RealityCheck(
                session_id=row.id, player_id=row.player_id, game_id=row.game_id, started_at=row.started_at,
                elapsed_seconds=int((now - row.started_at).total_seconds()),
                interval_minutes=row.reality_check_minutes or 0, sequence=row.reality_checks_sent,
                currency=row.currency, staked=row.staked, won=row.won),
                producer=PRODUCER)
            row.next_reality_check_at = logic.next_reality_check(
                row.started_at, row.reality_check_minutes, row.reality_checks_sent)
    return len(expired), len(due)
