"""Tables of the risk service: rule set versions, decisions, review cases, and the feature store
(per-player counters in time buckets, deposit methods, addresses and devices shared by accounts)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
add_audit_table(Base.metadata)
TS = DateTime(timezone=True)


class RuleSetVersion(Base):
    """Every version of the rule set ever published; the highest is in force. Never updated."""

    __tablename__ = "rule_sets"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(200))
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method_fingerprint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(100), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(SmallInteger)
    rules: Mapped[list[str]] = mapped_column(ARRAY(Text))
    rules_version: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (
        Index("uq_decisions_kind_reference", "kind", "reference", unique=True),
        Index("ix_decisions_player_decided", "player_id", "decided_at"),
    )


class Case(Base):
    """A review: opened by a `review` decision, assigned to a reviewer, decided once."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(200))
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    score: Mapped[int] = mapped_column(SmallInteger)
    rules: Mapped[list[str]] = mapped_column(ARRAY(Text))
    state: Mapped[str] = mapped_column(String(16))  # open | approved | rejected | withdrawn
    opened_at: Mapped[datetime] = mapped_column(TS)
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_cases_state_opened", "state", "opened_at"),)


class PlayerFeatures(Base):
    """The per-player state that is not a windowed counter."""

    __tablename__ = "player_features"

    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    registered_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_deposit_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_deposit_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    wagered_since_deposit: Mapped[int] = mapped_column(BigInteger, default=0)
    won_since_deposit: Mapped[int] = mapped_column(BigInteger, default=0)
    last_bet_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    harm_score: Mapped[int] = mapped_column(SmallInteger, default=0)
    harm_rules: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    harm_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)

    __table_args__ = (Index("ix_player_features_harm", "harm_score", postgresql_where=text("harm_score > 0")),)


class FeatureBucket(Base):
    """Count and sum of one feature of one player in one time bucket (`span` seconds from `start`)."""

    __tablename__ = "feature_buckets"

    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    feature: Mapped[str] = mapped_column(String(32), primary_key=True)
    span: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[datetime] = mapped_column(TS, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_feature_buckets_span_start", "span", "start"),)


class DepositMethod(Base):
    __tablename__ = "deposit_methods"

    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(TS)
    last_seen: Mapped[datetime] = mapped_column(TS)


class IdentityLink(Base):
    """An account seen on an address or device (`kind` ip | device)."""

    __tablename__ = "identity_links"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(TS)
    last_seen: Mapped[datetime] = mapped_column(TS)
