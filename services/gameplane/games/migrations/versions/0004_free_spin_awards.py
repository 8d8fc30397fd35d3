"""games: free-spin awards (granted by bonus, played at the provider, their wins counted here) and
the spin each free-spin win holds

Revision ID: 0004_free_spin_awards
Revises: 0003_provider_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_free_spin_awards"
down_revision = "0003_provider_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "free_spin_awards",
        sa.Column("award_id", sa.String(100), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(200), nullable=False),
        sa.Column("player_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("game_id", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("spins", sa.Integer(), nullable=False),
        sa.Column("stake", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("spins_played", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("won", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        # spins_played counts the spins paid and in flight: never more than awarded
        sa.CheckConstraint("spins_played >= 0 AND spins_played <= spins", name="ck_free_spin_awards_spins"),
        sa.CheckConstraint("won >= 0", name="ck_free_spin_awards_won"),
    )
    op.create_index("ix_free_spin_awards_player", "free_spin_awards", ["player_id"])
    # the spin each free-spin win holds, once per provider transaction (a retry finds it held)
    op.create_table(
        "free_spin_plays",
        sa.Column("provider", sa.String(100), primary_key=True),
        sa.Column("transaction_id", sa.String(100), primary_key=True),
        sa.Column("award_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_table("free_spin_plays")
    op.drop_index("ix_free_spin_awards_player", table_name="free_spin_awards")
    op.drop_table("free_spin_awards")
