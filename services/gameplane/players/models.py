"""Tables of the players database: accounts, refresh tokens, KYC submissions, protections, staff
accounts, staff notes on players and the staff audit log."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
add_audit_table(Base.metadata)

TS = DateTime(timezone=True)


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (
        CheckConstraint("kyc_state IN ('unverified','pending','verified','rejected')", name="kyc_state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored normalised (lower case)
    password_hash: Mapped[str] = mapped_column(String(255))
    date_of_birth: Mapped[date] = mapped_column(Date)
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    marketing_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    affiliate_click_id: Mapped[str | None] = mapped_column(String(128))
    kyc_state: Mapped[str] = mapped_column(String(16), default="unverified")
    kyc_updated_at: Mapped[datetime | None] = mapped_column(TS)
    registered_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    password_changed_at: Mapped[datetime] = mapped_column(TS)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    failed_window_started_at: Mapped[datetime | None] = mapped_column(TS)
    locked_until: Mapped[datetime | None] = mapped_column(TS)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    rotated_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class KycSubmission(Base):
    __tablename__ = "kyc_submissions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    document_type: Mapped[str] = mapped_column(String(32))
    document_reference: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(TS)
    decision: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(TS)


class PlayerNote(Base):
    """A staff member's note on a player (a call, a complaint, a document asked for). Notes are never
    edited or removed: a correction is a new note; each one is audited as it is written."""

    __tablename__ = "player_notes"
    __table_args__ = (Index("ix_player_notes_player_id_at", "player_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(TS)
    author: Mapped[str] = mapped_column(String(200))  # staff:<username> as it was at the time
    text: Mapped[str] = mapped_column(String(2000))


class Protection(Base):
    """One row per player; `revision` orders the protection_changed snapshots it publishes."""

    __tablename__ = "protections"

    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    timeout_until: Mapped[datetime | None] = mapped_column(TS)
    self_excluded_at: Mapped[datetime | None] = mapped_column(TS)
    self_excluded_until: Mapped[datetime | None] = mapped_column(TS)
    reality_check_minutes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(TS)


class LimitRow(Base):
    __tablename__ = "limits"
    __table_args__ = (
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("pending_value IS NULL OR pending_value > 0", name="pending_positive"),
        Index("ix_limits_pending_due", "pending_effective_at",
              postgresql_where=text("pending_effective_at IS NOT NULL")),
    )

    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    pending_value: Mapped[int | None] = mapped_column(BigInteger)
    pending_effective_at: Mapped[datetime | None] = mapped_column(TS)
    pending_removal: Mapped[bool] = mapped_column(Boolean, default=False)


class StaffAccount(Base):
    """A member of the operator's staff (back office): password, TOTP second factor, roles."""

    __tablename__ = "staff_accounts"
    __table_args__ = (
        CheckConstraint("""jsonb_typeof(roles) = 'array' AND jsonb_array_length(roles) > 0 """
                        """AND roles <@ '["support","risk","finance","admin"]'::jsonb""", name="roles_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # stored normalised (lower case)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSONB)
    totp_secret: Mapped[str] = mapped_column(String(64))
    # The newest TOTP time step a login used: a code of that step or an older one is not taken again.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(TS)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    failed_window_started_at: Mapped[datetime | None] = mapped_column(TS)
    locked_until: Mapped[datetime | None] = mapped_column(TS)
