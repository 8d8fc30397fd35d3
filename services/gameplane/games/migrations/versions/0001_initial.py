"""games: catalog, provider requests, provider transactions, rounds.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("now()")


def upgrade() -> None:
    create_kit_tables()
    op.create_table(
        "games",
        sa.Column("game_id", sa.String(100), primary_key=True),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("rtp_bp", sa.Integer(), nullable=False),
        sa.Column("volatility", sa.String(16), nullable=False),
        sa.Column("wagering_contribution_pct", sa.Integer(), nullable=False),
        sa.Column("stakes", JSONB(), nullable=False),
        sa.Column("jurisdictions", JSONB(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=NOW),
        sa.CheckConstraint("rtp_bp BETWEEN 0 AND 10000", name="rtp_bp"),
        sa.CheckConstraint("wagering_contribution_pct BETWEEN 0 AND 100", name="contribution"),
    )
    op.create_table(
        "provider_requests",
        sa.Column("provider", sa.String(100), primary_key=True),
        sa.Column("request_id", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("outcome", JSONB(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
    )
    op.create_table(
        "provider_transactions",
        sa.Column("provider", sa.String(100), primary_key=True),
        sa.Column("transaction_id", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("round_id", sa.String(100), nullable=True),
        sa.Column("bet_transaction_id", sa.String(100), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("noop", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("answer", JSONB(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
    )
    # A late bet is refused when a rollback already names it.
    op.create_index("ix_provider_transactions_bet_ref", "provider_transactions",
                    ["provider", "bet_transaction_id"], postgresql_where=sa.text("bet_transaction_id IS NOT NULL"))
    op.create_table(
        "rounds",
        sa.Column("provider", sa.String(100), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("round_id", sa.String(100), primary_key=True),
        sa.Column("game_id", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bet_total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("win_total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("wins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("opened_at", TS, nullable=False, server_default=NOW),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
    )


def downgrade() -> None:
    for table in ("rounds", "provider_transactions", "provider_requests", "games", "processed_events", "outbox"):
        op.drop_table(table)
