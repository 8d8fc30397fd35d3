"""players: staff notes on players (the back office's player profile).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "player_notes",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_player_notes"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name="fk_player_notes_player_id_players",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_player_notes_player_id_at", "player_notes", ["player_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_player_notes_player_id_at", table_name="player_notes")
    op.drop_table("player_notes")
