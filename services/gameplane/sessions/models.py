"""Tables of the sessions service: game sessions and the protection state copied from players events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from gameplane.kit.db import make_base

Base = make_base()
TS = DateTime(timezone=True)


class GameSession(Base):
    __tablename__ = "game_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    game_id: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="active")
    started_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    capped_by_limit: Mapped[bool] = mapped_column(default=False)
    ended_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reality_check_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reality_checks_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reality_check_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    staked: Mapped[int] = mapped_column(BigInteger, default=0)
    won: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index("ix_game_sessions_player_started", "player_id", "started_at"),
        Index("ix_game_sessions_active_expiry", "expires_at", postgresql_where=text("status = 'active'")),
        Index("ix_game_sessions_active_reality", "next_reality_check_at",
              postgresql_where=text("status = 'active' AND next_reality_check_at IS NOT NULL")),
    )


class PlayerProtection(Base):
    """The newest `players.protection_changed` snapshot (by revision) plus the separate
    self-exclusion / time-out events, which may arrive before or after it."""

    __tablename__ = "player_protection"

    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    timeout_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    self_excluded_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    session_limit_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reality_check_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
