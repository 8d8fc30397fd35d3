"""sessions: game sessions and the player protection copy.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_kit_tables()
    op.create_table(
        "game_sessions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("game_id", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("capped_by_limit", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("reality_check_minutes", sa.Integer(), nullable=True),
        sa.Column("reality_checks_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_reality_check_at", TS, nullable=True),
        sa.Column("staked", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("won", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("status IN ('active', 'ended')", name="status"),
        sa.UniqueConstraint("token", name="uq_game_sessions_token"),
    )
    op.create_index("ix_game_sessions_player_started", "game_sessions", ["player_id", "started_at"])
    op.create_index("ix_game_sessions_active_expiry", "game_sessions", ["expires_at"],
                    postgresql_where=sa.text("status = 'active'"))
    op.create_index("ix_game_sessions_active_reality", "game_sessions", ["next_reality_check_at"],
                    postgresql_where=sa.text("status = 'active' AND next_reality_check_at IS NOT NULL"))
    op.create_table(
        "player_protection",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("timeout_until", TS, nullable=True),
        sa.Column("self_excluded_until", TS, nullable=True),
        sa.Column("session_limit_minutes", sa.Integer(), nullable=True),
        sa.Column("reality_check_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_table("player_protection")
    op.drop_table("game_sessions")
    op.drop_table("processed_events")
    op.drop_table("outbox")
