"""Tables of games: the catalog and the seamless-wallet state (requests, provider transactions, rounds).

Money itself lives in the wallet; these rows let games answer replays and refuse what the rules
forbid without a wallet round trip, and keep the provider's view of every round for support.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gameplane.kit.db import make_base

Base = make_base()
TS = DateTime(timezone=True)


class Game(Base):
    __tablename__ = "games"

    game_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(50))
    rtp_bp: Mapped[int] = mapped_column(Integer)
    volatility: Mapped[str] = mapped_column(String(16))
    wagering_contribution_pct: Mapped[int] = mapped_column(Integer)
    stakes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    jurisdictions: Mapped[list[str]] = mapped_column(JSONB)
    enabled: Mapped[bool] = mapped_column(Boolean)
    max_win_multiplier: Mapped[int] = mapped_column(Integer, server_default=text("5000"))
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))


class ProviderRequest(Base):
    """Answer to each request id, so a repeated request gets the same answer."""

    __tablename__ = "provider_requests"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(20))
    request_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    # The pruning of records past the replay window scans by age.
    __table_args__ = (Index("ix_provider_requests_created_at", "created_at"),)


class ProviderTransaction(Base):
    """One money movement per provider transaction id (kept for months: it is the idempotency record)."""

    __tablename__ = "provider_transactions"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(20))
    request_hash: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    round_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    bet_transaction_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    noop: Mapped[bool] = mapped_column(Boolean, default=False)
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    __table_args__ = (
        # A late bet is refused when a rollback already names it.
        Index("ix_provider_transactions_bet_ref", "provider", "bet_transaction_id",
              postgresql_where=text("bet_transaction_id IS NOT NULL")),
    )


class Round(Base):
    __tablename__ = "rounds"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Per player: a table game's round (one roulette spin) is shared by everyone at the table.
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    round_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    game_id: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    bet_total: Mapped[int] = mapped_column(BigInteger, default=0)
    win_total: Mapped[int] = mapped_column(BigInteger, default=0)
    # Wins being paid right now, held against the round's cap (gameplane.games.records.reserve_win).
    win_pending: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wins: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    closed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class FreeSpinAward(Base):
    """Free spins a bonus grant gave a player, forwarded to the game's provider (`accepted` once it
    took them). `spins_played` counts the spins paid and in flight (a spin is held while the wallet
    credits its win, given back when the credit fails), so it never passes `spins`."""

    __tablename__ = "free_spin_awards"

    award_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    grant_id: Mapped[str] = mapped_column(String(200))
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    currency: Mapped[str] = mapped_column(String(3))
    game_id: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(100))
    spins: Mapped[int] = mapped_column(Integer)
    stake: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(TS)
    accepted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    spins_played: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    won: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    __table_args__ = (
        CheckConstraint("spins_played >= 0 AND spins_played <= spins", name="spins"),
        CheckConstraint("won >= 0", name="won"),
        Index("ix_free_spin_awards_player", "player_id"),
    )


class FreeSpinPlay(Base):
    """The spin a free-spin win holds, one per provider transaction: a retry of the win (after a lost
    answer, or a record that failed after the wallet credited) finds its spin held, not a new one."""

    __tablename__ = "free_spin_plays"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    award_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
