"""payments: payments, methods, webhooks, rejections, chargebacks, reconciliation mismatches, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from gameplane.kit.audit import create_audit_table
from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_kit_tables()
    create_audit_table()
    op.create_table(
        "payments",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("reference", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("psp", sa.String(40), nullable=False),
        sa.Column("psp_reference", sa.String(200), nullable=True),
        sa.Column("method_fingerprint", sa.String(200), nullable=True),
        sa.Column("method_type", sa.String(16), nullable=True),
        sa.Column("method_label", sa.String(200), nullable=True),
        sa.Column("redirect_url", sa.Text, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("held_reason", sa.String(200), nullable=True),
        sa.Column("risk_decision", sa.String(16), nullable=True),
        sa.Column("risk_case_id", UUID(as_uuid=True), nullable=True),
        sa.Column("hold_id", UUID(as_uuid=True), nullable=True),
        sa.Column("wallet_pending", sa.String(16), nullable=True),
        sa.Column("credited", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("settled_at", TS, nullable=True),
        sa.UniqueConstraint("psp", "psp_reference", name="uq_payments_psp_reference"),
    )
    op.create_index("ix_payments_player_created", "payments", ["player_id", "created_at"])
    op.create_index("ix_payments_state", "payments", ["state"])
    op.create_index("ix_payments_wallet_pending", "payments", ["id"],
                    postgresql_where=sa.text("wallet_pending IS NOT NULL"))
    op.create_table(
        "payment_methods",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("fingerprint", sa.String(200), primary_key=True),
        sa.Column("psp", sa.String(40), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("psp", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("psp", "event_id", name="uq_webhooks_psp_event"),
    )
    op.create_table(
        "webhook_rejections",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("psp", sa.String(40), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_webhook_rejections_received", "webhook_rejections", ["received_at"])
    op.create_table(
        "chargebacks",
        sa.Column("psp", sa.String(40), primary_key=True),
        sa.Column("psp_reference", sa.String(200), primary_key=True),
        sa.Column("payment_id", UUID(as_uuid=True), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "reconciliation_mismatches",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("psp", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("found_at", TS, nullable=False),
    )
    op.create_index("ix_reconciliation_mismatches_day", "reconciliation_mismatches", ["day"])


def downgrade() -> None:
    for table in ("reconciliation_mismatches", "chargebacks", "webhook_rejections", "webhooks",
                  "payment_methods", "payments", "processed_events", "outbox"):
        op.drop_table(table)
    from gameplane.kit.audit import drop_audit_table
    drop_audit_table()
