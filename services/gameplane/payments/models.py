"""Tables of the payments service (SQLAlchemy Core; the migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Date,
                        DateTime,
                        Identity,
                        Index,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        text,
)
from sqlalchemy.dialects.postgresql import UUID

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
metadata = Base.metadata
TS = DateTime(timezone=True)

payments = Table(
    "payments", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("reference", String(64), nullable=False, unique=True),  # ours; the PSP echoes it
    Column("kind", String(16), nullable=False),  # deposit | withdrawal
    Column("state", String(16), nullable=False),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("psp", String(40), nullable=False),
    Column("psp_reference", String(200), nullable=True),
    Column("method_fingerprint", String(200), nullable=True),
    Column("method_type", String(16), nullable=True),
    Column("method_label", String(200), nullable=True),
    Column("redirect_url", Text, nullable=True),
    Column("expires_at", TS, nullable=True),
    Column("held_reason", String(200), nullable=True),
    Column("risk_decision", String(16), nullable=True),
    Column("risk_case_id", UUID(as_uuid=True), nullable=True),
    Column("hold_id", UUID(as_uuid=True), nullable=True),
    # a wallet call this payment still owes (credit | hold | post | void); the sweeper retries it
    Column("wallet_pending", String(16), nullable=True),
    Column("credited", Boolean, nullable=False, server_default=text("false")),
    Column("late", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("settled_at", TS, nullable=True),
    Index("ix_payments_player_created", "player_id", "created_at"),
    Index("ix_payments_state", "state"),
    Index("ix_payments_wallet_pending", "id", postgresql_where=text("wallet_pending IS NOT NULL")),
    UniqueConstraint("psp", "psp_reference", name="uq_payments_psp_reference"),
)

# instruments a player deposited with: the only places a withdrawal may go
payment_methods = Table(
    "payment_methods", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("fingerprint", String(200), primary_key=True),
    Column("psp", String(40), nullable=False),
    Column("type", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    Column("first_seen", TS, nullable=False),
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("psp", String(40), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("received_at", TS, nullable=False),
    UniqueConstraint("psp", "event_id", name="uq_webhooks_psp_event"),
)

webhook_rejections = Table(
    "webhook_rejections", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("psp", String(40), nullable=False),
    Column("code", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("event_id", String(200), nullable=True),
    Column("reference", String(200), nullable=True),
    Column("body_sha256", String(64), nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_webhook_rejections_received", "received_at"),
)

chargebacks = Table(
    "chargebacks", metadata,
    Column("psp", String(40), primary_key=True),
    Column("psp_reference", String(200), primary_key=True),
    Column("payment_id", UUID(as_uuid=True), nullable=False),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False),  # pending (wallet owes it) | posted
    Column("created_at", TS, nullable=False),
)

mismatches = Table(
    "reconciliation_mismatches", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("day", Date, nullable=False),
    Column("psp", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reference", String(200), nullable=True),
    Column("detail", Text, nullable=False),
    Column("found_at", TS, nullable=False),
    Index("ix_reconciliation_mismatches_day", "day"),
)

audit_log = add_audit_table(metadata)
